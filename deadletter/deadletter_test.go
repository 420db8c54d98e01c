package deadletter

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

// TestParseIDRefusesWhatIsNotAChainAndAnEntryID covers the ids the API
// takes from a URL path, worst inputs included.
func TestParseIDRefusesWhatIsNotAChainAndAnEntryID(t *testing.T) {
	chain, entry, err := ParseID("31337-1700000000000-3")
	if err != nil || chain != 31337 || entry != "1700000000000-3" {
		t.Fatalf("good id: %d %q %v", chain, entry, err)
	}
	for _, bad := range []string{"", "31337", "31337-", "x-1-2", "1-2", "1-a-2", "1-2-b", "-1-2", "1-2-3-4", strings.Repeat("9", 70) + "-1-2"} {
		if _, _, err := ParseID(bad); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseID(%q) = %v, want ErrBadID", bad, err)
		}
	}
}

// TestReplayOfALetterThatIsNotThereIsNotFound: the API and the UI answer
// 404 on hook.ErrNotFound, the one not-found of every service package.
func TestReplayOfALetterThatIsNotThereIsNotFound(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	_, err := Replay(context.Background(), rdb, hook.Keys{Prefix: prefix}, "31337-1700000000000-3")
	if !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("replay of a missing letter: %v, want hook.ErrNotFound", err)
	}
}
