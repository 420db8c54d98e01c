package hook

import (
	"strings"
	"testing"
)

func TestParseFinalityMapsEveryStage(t *testing.T) {
	for _, tc := range []struct {
		in, stage string
		n         int
		text      string
	}{
		{"latest", "", 0, "latest"}, {"confirmations:0", "", 0, "latest"}, {"confirmations:12", "", 12, "confirmations:12"},
		{" Safe ", StageSafe, 0, "safe"}, {"finalized", StageFinalized, 0, "finalized"}, {"confirmations:1000", "", 1000, "confirmations:1000"},
	} {
		stage, n, err := ParseFinality(tc.in)
		if err != nil || stage != tc.stage || n != tc.n {
			t.Fatalf("ParseFinality(%q) = %q %d %v, want %q %d", tc.in, stage, n, err, tc.stage, tc.n)
		}
		if got := FormatFinality(stage, n); got != tc.text {
			t.Fatalf("FormatFinality(%q, %d) = %q, want %q", stage, n, got, tc.text)
		}
	}
	for _, bad := range []string{"", "final", "confirmations:", "confirmations:1001", "confirmations:-1", "confirmations:1e3", "confirmations:99999999999999999999"} {
		if _, _, err := ParseFinality(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Fatalf("ParseFinality(%q) accepted", bad)
		}
	}
}

func TestFinalityAndBlockRemovedEntriesRoundTrip(t *testing.T) {
	f := Finality{Safe: Cursor{Number: 9, Hash: "0xs", Set: true}, Finalized: Cursor{Number: 5, Hash: "0xf", Set: true}}
	got, err := ParseFinalityEntry(f.Fields())
	if err != nil || got != f {
		t.Fatalf("finality round trip = %+v %v, want %+v", got, err, f)
	}
	if _, err := ParseFinalityEntry(map[string]string{"type": TypeFinality, "finalized": "x"}); err == nil {
		t.Fatal("a bad finalized cursor was accepted")
	}
	b := BlockRemoved{Block: Cursor{Number: 3, Hash: "0xb", Set: true}}
	gb, err := ParseBlockRemoved(b.Fields())
	if err != nil || gb != b {
		t.Fatalf("block.removed round trip = %+v %v", gb, err)
	}
	if _, err := ParseBlockRemoved(map[string]string{"type": TypeBlockRemoved}); err == nil {
		t.Fatal("a block.removed without a block was accepted")
	}
	if WebhookID("1:0xa:0", TypeLogFinalized) != "1:0xa:0:finalized" {
		t.Fatal("log.finalized webhook id")
	}
}
