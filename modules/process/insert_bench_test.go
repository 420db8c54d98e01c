package process

// BenchmarkInsertOrder inserts reads of 500 messages spread over 1,000
// endpoints into real Postgres, in stream order and in endpoint order
// (messageRows), and reports the CPU time of the Postgres backend that ran
// the inserts (from /proc/<pid>/schedstat, so other work on the machine is
// not counted):
//
//	go test -run '^$' -bench InsertOrder -benchtime 20000x ./modules/process/

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/msgstate"
)

// streamOrderRows is messageRows without the sort: the rows as the read
// produced them.
func streamOrderRows(rows []msgRow) *msgstate.Rows {
	out := msgstate.MakeRows(len(rows))
	for i, r := range rows {
		out.IDs[i], out.AppIDs[i], out.EndpointIDs[i], out.EventIDs[i], out.Types[i], out.WebhookIDs[i] =
			r.id, r.appID, r.endpointID, r.eventID, r.typ, r.webhookID
		out.ChainIDs[i], out.BlockNumbers[i], out.BlockHashes[i], out.TxHashes[i], out.Payloads[i], out.States[i] =
			r.chainID, r.blockNumber, r.blockHash, r.txHash, string(r.payload), r.state
		out.LogIndexes[i], out.FIFOKeys[i] = r.logIndex, r.fifoKey
	}
	return &out
}

// backendCPU is the CPU time, in ns, the Postgres backend pid has run.
func backendCPU(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		b.Skipf("Postgres backend not readable here: %v", err)
	}
	var ns int64
	fmt.Sscan(string(raw), &ns)
	return ns
}

func BenchmarkInsertOrder(b *testing.B) {
	for _, bc := range []struct {
		name string
		rows func([]msgRow) *msgstate.Rows
	}{{"stream_order", streamOrderRows}, {"endpoint_order", messageRows}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			e.bulkEndpoints(1000)
			ctx := context.Background()
			var ids []string
			r, err := e.pool.Query(ctx, `SELECT id FROM endpoints WHERE app_id = $1`, e.app)
			if err != nil {
				b.Fatal(err)
			}
			for r.Next() {
				var id string
				if err := r.Scan(&id); err != nil {
					b.Fatal(err)
				}
				ids = append(ids, id)
			}
			r.Close()
			rng := rand.New(rand.NewPCG(1, 1))
			rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			payload := []byte(`{"id":"x","type":"log","body":"` + strings.Repeat("a", 700) + `"}`)
			now := time.Now()
			row := func(i int) msgRow {
				ev := transfer("io", uint64(1_000_000+i/100), uint(i%100), token, alice, bob, int64(i))
				ep := ids[i%len(ids)]
				return msgRow{id: hook.MessageID(ep, ev.ID, hook.TypeLog, now, now), appID: e.app, endpointID: ep,
					eventID: ev.ID, typ: hook.TypeLog, webhookID: ev.ID, chainID: testChain, blockNumber: int64(ev.Block.Number),
					blockHash: ev.Block.Hash, txHash: ev.Transaction.Hash, payload: payload, state: hook.StatePending, logIndex: int32(ev.Log.Index)}
			}
			conn, err := e.pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			var pid int
			if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				b.Fatal(err)
			}
			insert := func(conn *pgxpool.Conn, rows []msgRow) {
				got, err := msgstate.Insert(ctx, conn, bc.rows(rows), false)
				if err != nil {
					b.Fatal(err)
				}
				got.Close()
				if err := got.Err(); err != nil {
					b.Fatal(err)
				}
			}
			const read = 500
			// Warm the backend's caches and plans.
			warm := make([]msgRow, 0, read)
			for i := 0; i < read; i++ {
				warm = append(warm, row(b.N+i))
			}
			insert(conn, warm)
			b.ResetTimer()
			cpu0 := backendCPU(b, pid)
			for done := 0; done < b.N; done += read {
				b.StopTimer()
				rows := make([]msgRow, 0, read)
				for i := done; i < min(b.N, done+read); i++ {
					rows = append(rows, row(i))
				}
				b.StartTimer()
				insert(conn, rows)
			}
			b.ReportMetric(float64(backendCPU(b, pid)-cpu0)/float64(b.N), "pg-cpu-ns/row")
		})
	}
}
