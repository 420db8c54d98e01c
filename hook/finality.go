package hook

import (
	"fmt"
	"strconv"
	"strings"
)

// Stream entry and message types beside TypeLog and TypeLogRemoved.
const (
	// TypeLogFinalized is the second phase of a two-phase endpoint: the
	// same event (same id and body) once its block reached the endpoint's
	// finality stage.
	TypeLogFinalized = "log.finalized"
	// TypeFinality is a stream entry that carries the node's safe and
	// finalized heads as ingest verified them against what it committed.
	// Process applies it in stream order: every removal published before
	// it is handled before an event is released at that stage.
	TypeFinality = "finality"
	// TypeBlockRemoved is a stream entry that retracts a whole orphaned
	// block deeper than ingest keeps entries for (a deep reorg): process
	// retracts what Postgres knows it produced for that block hash.
	TypeBlockRemoved = "block.removed"
)

// Finality stages an endpoint may choose (Endpoint.Finality).
const (
	StageLatest        = "latest"
	StageConfirmations = "confirmations"
	StageSafe          = "safe"
	StageFinalized     = "finalized"
)

// MaxConfirmations bounds "confirmations:N".
const MaxConfirmations = 1000

// ParseFinality parses an endpoint's finality setting: "latest",
// "confirmations:N" (0..MaxConfirmations; 0 is latest), "safe" or
// "finalized". It returns the stage (StageSafe, StageFinalized, or "" for
// a block count) and the count.
func ParseFinality(s string) (stage string, confirmations int, err error) {
	switch t := strings.TrimSpace(strings.ToLower(s)); {
	case t == StageLatest:
		return "", 0, nil
	case t == StageSafe, t == StageFinalized:
		return t, 0, nil
	case strings.HasPrefix(t, StageConfirmations+":"):
		n, err := strconv.Atoi(strings.TrimPrefix(t, StageConfirmations+":"))
		if err != nil || n < 0 || n > MaxConfirmations {
			return "", 0, fmt.Errorf("confirmations:N needs N in 0..%d, got %q", MaxConfirmations, s)
		}
		return "", n, nil
	}
	return "", 0, fmt.Errorf("must be latest, confirmations:N, safe or finalized, got %q", s)
}

// FormatFinality is the text form of a stage and count (see ParseFinality).
func FormatFinality(stage string, confirmations int) string {
	switch {
	case stage != "":
		return stage
	case confirmations > 0:
		return StageConfirmations + ":" + strconv.Itoa(confirmations)
	}
	return StageLatest
}

// Finality is a TypeFinality stream entry: the node's safe and finalized
// blocks, each one ingest had committed with that hash. Either may be
// unset (the node does not report the tag). Ingest never publishes a lower
// block than it published before.
type Finality struct {
	Safe      Cursor
	Finalized Cursor
}

// Fields returns the stream entry fields (XADD ... type finality safe <cursor> finalized <cursor>).
func (f Finality) Fields() map[string]string {
	return map[string]string{"type": TypeFinality, "safe": f.Safe.String(), "finalized": f.Finalized.String()}
}

// Record is the text ingest keeps at `<prefix>{<chain>}:finality` (the
// last published heads, read by the chains API and the dashboard):
// "<safe cursor>|<finalized cursor>", either side "" when unset.
func (f Finality) Record() string { return f.Safe.String() + "|" + f.Finalized.String() }

// ParseFinalityRecord parses Record's form.
func ParseFinalityRecord(s string) (Finality, error) {
	safe, fin, ok := strings.Cut(s, "|")
	if !ok {
		return Finality{}, fmt.Errorf("bad finality record %q", s)
	}
	return ParseFinalityEntry(map[string]string{"type": TypeFinality, "safe": safe, "finalized": fin})
}

// ParseFinalityEntry decodes a TypeFinality entry's fields.
func ParseFinalityEntry(fields map[string]string) (Finality, error) {
	var f Finality
	if fields["type"] != TypeFinality {
		return f, fmt.Errorf("stream entry of type %q is not %s", fields["type"], TypeFinality)
	}
	for _, p := range []struct {
		key string
		c   *Cursor
	}{{"safe", &f.Safe}, {"finalized", &f.Finalized}} {
		if s := fields[p.key]; s != "" {
			c, err := ParseCursor(s)
			if err != nil {
				return Finality{}, fmt.Errorf("finality entry: %s: %w", p.key, err)
			}
			*p.c = c
		}
	}
	return f, nil
}

// BlockRemoved is a TypeBlockRemoved stream entry: an orphaned block.
type BlockRemoved struct{ Block Cursor }

// Fields returns the stream entry fields (XADD ... type block.removed block <cursor>).
func (b BlockRemoved) Fields() map[string]string {
	return map[string]string{"type": TypeBlockRemoved, "block": b.Block.String()}
}

// ParseBlockRemoved decodes a TypeBlockRemoved entry's fields.
func ParseBlockRemoved(fields map[string]string) (BlockRemoved, error) {
	if fields["type"] != TypeBlockRemoved {
		return BlockRemoved{}, fmt.Errorf("stream entry of type %q is not %s", fields["type"], TypeBlockRemoved)
	}
	c, err := ParseCursor(fields["block"])
	if err != nil {
		return BlockRemoved{}, fmt.Errorf("block.removed entry: %w", err)
	}
	return BlockRemoved{Block: c}, nil
}
