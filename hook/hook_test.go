package hook

import "testing"

func TestEventIDIsChainBlockHashAndLogIndex(t *testing.T) {
	if got := EventID(1, "0xABCDEF", 12); got != "1:0xabcdef:12" {
		t.Fatalf("EventID = %s", got)
	}
	if WebhookID("1:0xab:3", TypeLog) != "1:0xab:3" || WebhookID("1:0xab:3", TypeLogRemoved) != "1:0xab:3:removed" {
		t.Fatal("WebhookID must keep the event id for a log and add :removed for a retraction")
	}
}

func TestStreamEntryRoundTripAndTypeFieldWins(t *testing.T) {
	e := Event{ID: "1:0xab:0", Type: TypeLog, Chain: Chain{ID: 1, Name: "eth"},
		Block: Block{Number: 7, Hash: "0xab", ParentHash: "0xaa", Timestamp: 99},
		Log:   Log{Address: "0x01", Topics: []string{"0xdd"}, Data: "0x", Index: 0}}
	f, err := e.Fields()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEntry(f)
	if err != nil || got.Block.Number != 7 || got.Log.Topics[0] != "0xdd" || got.Type != TypeLog {
		t.Fatalf("%+v %v", got, err)
	}
	f["type"] = TypeLogRemoved
	if got, _ := ParseEntry(f); got.Type != TypeLogRemoved {
		t.Fatalf("type field ignored: %s", got.Type)
	}
	for _, bad := range []map[string]string{{}, {"id": "x", "type": "log", "event": "{"}, {"id": "x", "type": "weird", "event": "{}"}} {
		if _, err := ParseEntry(bad); err == nil {
			t.Fatalf("accepted %v", bad)
		}
	}
}

func TestKeysShareTheChainHashTag(t *testing.T) {
	k := Keys{Prefix: "ethhook:"}
	if k.Events(8453) != "ethhook:{8453}:events" || k.Chain(1, "cursor") != "ethhook:{1}:cursor" || k.DeliverJobs() != "ethhook:{deliver}:jobs" {
		t.Fatal(k.Events(8453), k.Chain(1, "cursor"), k.DeliverJobs())
	}
}
