package hook

import (
	"fmt"
	"strconv"
	"time"
)

// History states of an endpoint created with from_block.
const (
	HistoryPending = "pending" // waiting for the chain's historian
	HistoryRunning = "running"
	HistoryDone    = "done"
	HistoryFailed  = "failed"
)

// History is the progress of an endpoint's history: its matching events
// from FromBlock up to ToBlock (the live head when it started; the live
// path delivers everything after it). Stored in endpoint_history.
type History struct {
	FromBlock uint64 `json:"from_block"`
	// ToBlock is set once the history started.
	ToBlock *uint64 `json:"to_block,omitempty"`
	State   string  `json:"state"` // pending, running, done, failed
	// BlocksDone counts blocks from FromBlock whose events are messages.
	BlocksDone uint64 `json:"blocks_done"`
	// BlocksTotal is ToBlock-FromBlock+1 once ToBlock is set.
	BlocksTotal uint64    `json:"blocks_total"`
	Events      int64     `json:"events"` // events made messages so far
	Error       string    `json:"error,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// History is the chain's history stream, `<prefix>{<chain_id>}:history`:
// ingest's historian publishes the events of endpoints' histories there
// and process makes them messages with the live path's payload builder.
func (k Keys) History(chainID uint64) string { return k.Chain(chainID, "history") }

// HistoryGroup is the consumer group process reads history streams with.
const HistoryGroup = "process-history"

// HistoryEntry is one entry of a history stream: either an event for one
// endpoint, or a mark saying every event of the endpoint's blocks up to
// Through was published before it (Final: the history is complete).
type HistoryEntry struct {
	EndpointID string
	Event      *Event // nil for a mark
	Through    uint64
	Final      bool
}

// Fields returns the stream entry fields: `endpoint` plus the event's
// fields (see Event.Fields), or `endpoint`, `through` and `final`.
func (h *HistoryEntry) Fields() (map[string]string, error) {
	if h.Event == nil {
		return map[string]string{"endpoint": h.EndpointID, "through": strconv.FormatUint(h.Through, 10),
			"final": strconv.FormatBool(h.Final)}, nil
	}
	f, err := h.Event.Fields()
	if err != nil {
		return nil, err
	}
	f["endpoint"] = h.EndpointID
	return f, nil
}

// ParseHistoryEntry is the inverse of Fields.
func ParseHistoryEntry(f map[string]string) (HistoryEntry, error) {
	h := HistoryEntry{EndpointID: f["endpoint"]}
	if h.EndpointID == "" {
		return h, fmt.Errorf("history entry has no endpoint field")
	}
	if th, ok := f["through"]; ok {
		n, err := strconv.ParseUint(th, 10, 64)
		if err != nil {
			return h, fmt.Errorf("history entry of %s: bad through %q", h.EndpointID, th)
		}
		h.Through, h.Final = n, f["final"] == "true"
		return h, nil
	}
	ev, err := ParseEntry(f)
	if err != nil {
		return h, err
	}
	h.Event = &ev
	return h, nil
}
