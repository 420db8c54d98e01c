package process

import (
	"context"
	"reflect"
	"testing"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

// Messages of a FIFO endpoint carry what deliver orders them by: the log
// index next to the block number, and the ordering group (the chain, or the
// chain and the fifo_key's value), for direct, removed and released
// (confirmed) messages alike; a parallel endpoint's messages have no group.
func TestFIFOEndpointMessagesCarryTheirOrderAndGroup(t *testing.T) {
	e := newEnv(t)
	par := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	plain := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Ordering: "fifo"})
	byTo := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Ordering: "fifo", FIFOKey: "topic2"})
	held := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{other}}, Ordering: "fifo", FIFOKey: "contract", Confirmations: intp(1)})
	e.start()
	a := transfer("aa", 100, 3, token, alice, bob, 1)
	// The log is made before its removal is published: read in one batch,
	// a removal suppresses its log altogether (nothing would be sent).
	e.publish(a, transfer("aa", 101, 7, other, alice, bob, 9))
	e.eventually("made the log", func() bool { return e.count(par.ID) == 1 })
	e.publish(removed(a))
	e.publish(transfer("aa", 103, 0, "0x00000000000000000000000000000000000000ff", alice, bob, 1)) // moves the head
	e.eventually("released the confirmed log", func() bool { return e.count(held.ID) == 1 })
	e.eventually("stream drained", e.drained)

	type row struct {
		Type     string
		Block    int64
		LogIndex int32
		Group    *string
	}
	rows := func(ep string) []row {
		rs, err := e.pool.Query(context.Background(), `SELECT type, block_number, log_index, fifo_key FROM messages
			WHERE endpoint_id = $1 ORDER BY block_number, log_index, type`, ep)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		var out []row
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.Type, &r.Block, &r.LogIndex, &r.Group); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	s := func(v string) *string { return &v }
	chain := "31337"
	for _, c := range []struct {
		ep   string
		want []row
	}{
		{par.ID, []row{{"log", 100, 3, nil}, {"log.removed", 100, 3, nil}}},
		{plain.ID, []row{{"log", 100, 3, s(chain)}, {"log.removed", 100, 3, s(chain)}}},
		{byTo.ID, []row{{"log", 100, 3, s(chain + "/" + addrWord(bob))}, {"log.removed", 100, 3, s(chain + "/" + addrWord(bob))}}},
		{held.ID, []row{{"log", 101, 7, s(chain + "/" + other)}}}, // released after its confirmation
	} {
		if got := rows(c.ep); !reflect.DeepEqual(got, c.want) {
			t.Fatalf("endpoint %s: %+v, want %+v", c.ep, got, c.want)
		}
	}
}
