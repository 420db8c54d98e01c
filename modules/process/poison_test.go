package process

import (
	"context"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/deadletter"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

// TestPoisonEntryIsDeadLetteredAndReplayedAfterTheFix publishes, in one
// read, good events around two that process cannot handle: one Postgres
// rejects for now (a trigger, the "cause" fixed later) and one it always
// rejects (a NUL byte in the transaction hash). Both go to the dead-letter
// stream after poison_tries tries with their errors; the later events are
// delivered, including to an endpoint that waits for a confirmation (the
// safe head is not held back); replaying the first after the trigger is
// dropped makes its message.
func TestPoisonEntryIsDeadLetteredAndReplayedAfterTheFix(t *testing.T) {
	e := newEnv(t)
	e.cfg.Process.PoisonTries = 3
	ctx := context.Background()
	direct := e.endpoint(endpoint.Input{})
	one := 1
	held := e.endpoint(endpoint.Input{Confirmations: &one})

	const token, a, b = "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222", "0x3333333333333333333333333333333333333333"
	good1 := transfer("aa", 1, 0, token, a, b, 1)
	fixable := transfer("aa", 2, 0, token, a, b, 2)
	broken := transfer("aa", 3, 0, token, a, b, 3)
	broken.Transaction.Hash = "0x\x00bad"
	good2 := transfer("aa", 4, 0, token, a, b, 4)
	good3 := transfer("aa", 5, 0, token, a, b, 5)
	_, err := e.pool.Exec(ctx, `CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.event_id = '`+fixable.ID+`' THEN RAISE EXCEPTION 'poison test: event % rejected', NEW.event_id; END IF; RETURN NEW; END $$;
		CREATE TRIGGER reject_poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION reject_poison();`)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(good1, fixable, broken, good2, good3)
	e.start()

	has := func(ep, id string) bool {
		for _, m := range e.messages(ep) {
			if m.EventID == id && m.Type == hook.TypeLog {
				return true
			}
		}
		return false
	}
	e.eventually("later events delivered past the poison", func() bool { return has(direct.ID, good3.ID) && has(held.ID, good2.ID) })
	if has(direct.ID, fixable.ID) || has(direct.ID, broken.ID) {
		t.Fatal("a poison event has a message")
	}
	var letters []deadletter.Letter
	e.eventually("two dead letters", func() bool {
		letters, err = deadletter.List(ctx, e.rdb, e.keys, []uint64{testChain}, 10)
		return err == nil && len(letters) == 2
	})
	byEvent := map[string]deadletter.Letter{}
	for _, l := range letters {
		byEvent[l.Fields["id"]] = l
		if l.Tries != 3 || l.EntryID == "" {
			t.Fatalf("dead letter %+v: want 3 tries and its entry id", l)
		}
	}
	if l := byEvent[fixable.ID]; !strings.Contains(l.Error, "poison test") {
		t.Fatalf("dead letter of the rejected event: %+v", l)
	}
	if l := byEvent[broken.ID]; !strings.Contains(l.Error, "0x00") {
		t.Fatalf("dead letter of the NUL event: %+v", l)
	}
	// Nothing of the dead letters stays pending in the group.
	e.eventually("nothing pending", func() bool { return e.pending() == 0 })

	// Fix the cause, replay: the event gets its message.
	if _, err := e.pool.Exec(ctx, `DROP TRIGGER reject_poison ON messages`); err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Replay(ctx, e.rdb, e.keys, byEvent[fixable.ID].ID); err != nil {
		t.Fatal(err)
	}
	e.eventually("replayed event delivered", func() bool { return has(direct.ID, fixable.ID) })
	if _, err := deadletter.Replay(ctx, e.rdb, e.keys, byEvent[fixable.ID].ID); err == nil {
		t.Fatal("a dead letter replayed twice")
	}
	left, err := deadletter.List(ctx, e.rdb, e.keys, []uint64{testChain}, 10)
	if err != nil || len(left) != 1 || left[0].Fields["id"] != broken.ID {
		t.Fatalf("dead letters after the replay: %+v %v", left, err)
	}
}

// TestPoisonTriesAreCountedAcrossProcesses: an entry Postgres always
// rejects is tried by one process, which stops after two tries; a second
// process (another consumer of the group, as after a restart elsewhere)
// takes it over and dead-letters it once the tries of both add up to
// poison_tries, instead of starting the count again (with counts in
// memory an entry moving between processes is never dead-lettered).
func TestPoisonTriesAreCountedAcrossProcesses(t *testing.T) {
	e := newEnv(t)
	const tries = 4
	e.cfg.Process.PoisonTries = tries
	ctx := context.Background()
	e.endpoint(endpoint.Input{})
	const token, a, b = "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222", "0x3333333333333333333333333333333333333333"
	bad := transfer("ab", 7, 0, token, a, b, 7)
	// Every try leaves its mark in a sequence (not rolled back with the
	// failing insert).
	_, err := e.pool.Exec(ctx, `CREATE SEQUENCE poison_tries;
		CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM nextval('poison_tries'); RAISE EXCEPTION 'poison test: event % rejected', NEW.event_id; END $$;
		CREATE TRIGGER reject_poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION reject_poison();`)
	if err != nil {
		t.Fatal(err)
	}
	made := func() int {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM poison_tries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	e.publish(bad)
	first := e.start()
	e.eventually("two tries in the first process", func() bool { return made() >= 2 })
	first.stop()
	if l, _ := deadletter.List(ctx, e.rdb, e.keys, []uint64{testChain}, 10); len(l) != 0 {
		t.Fatalf("dead-lettered after %d tries of %d: %+v", made(), tries, l)
	}
	before := made()
	e.cfg.Process.Consumer = "test-second-" + randHex(4)
	e.start()
	var letters []deadletter.Letter
	e.eventually("the entry dead-lettered by the second process", func() bool {
		letters, err = deadletter.List(ctx, e.rdb, e.keys, []uint64{testChain}, 10)
		return err == nil && len(letters) > 0
	})
	e.eventually("nothing pending", func() bool { return e.pending() == 0 })
	// A try cut short by the stop may count once more than it ran.
	if n := made(); n > tries+1 || len(letters) != 1 || letters[0].Fields["id"] != bad.ID {
		t.Fatalf("%d tries (%d in the first process) for poison_tries %d; letters %+v", n, before, tries, letters)
	}
	if n, err := e.rdb.Do(ctx, e.rdb.B().Hlen().Key(deadletter.TriesKey(e.keys, testChain)).Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("try counts left after the dead letter: %d %v", n, err)
	}
}
