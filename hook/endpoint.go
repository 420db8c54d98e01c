package hook

import (
	"encoding/json"
	"time"
)

// Endpoint is a customer's webhook subscription: where to send, what to
// match, and how to deliver. It is stored in the endpoints table (the filter
// as JSON in endpoints.filter); the endpoint service (package endpoint)
// validates and saves it, process matches against it, deliver sends to it.
// The signing secret is never part of it (see endpoint.Service.Secret).
type Endpoint struct {
	ID             string   `json:"id"`
	AppID          string   `json:"app_id"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	Enabled        bool     `json:"enabled"`
	DisabledReason string   `json:"disabled_reason,omitempty"`
	Filter         Filter   `json:"filter"`
	Confirmations  int      `json:"confirmations"`   // 0 = at once (may see log.removed)
	BatchMax       int      `json:"batch_max"`       // >1 batches up to this many events per POST
	BatchWaitMS    int      `json:"batch_wait_ms"`   // longest an event waits for its batch to fill
	RateLimit      int      `json:"rate_limit"`      // events/s, 0 = plan default
	RetrySchedule  []string `json:"retry_schedule"`  // empty = the configured default
	AllowRedirects bool     `json:"allow_redirects"` // follow HTTP redirects when delivering
	// OpsEvents, when not empty, makes an operational endpoint: it gets
	// EthHook's own events of these types (package ops), never chain logs.
	OpsEvents []string `json:"ops_events,omitempty"`
	// Headers are static headers sent with every delivery (canonical
	// names); they never replace the Standard Webhooks headers.
	Headers   map[string]string `json:"headers,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Batching reports whether the endpoint gets batch payloads.
func (e *Endpoint) Batching() bool { return e.BatchMax > 1 }

// Filter selects the logs an endpoint receives. Every non-empty part must
// match (AND); within a part any entry may match (OR). An empty part is a
// wildcard, except Chains, which is required.
type Filter struct {
	// Chains are chain ids (at least one).
	Chains []uint64 `json:"chains"`
	// Addresses are contract addresses (0x, 20 bytes), stored lower-case.
	Addresses []string `json:"addresses,omitempty"`
	// Topics[i] lists the accepted values of topic i (0..3); an empty or
	// missing list accepts anything. 32-byte 0x hex, stored lower-case.
	Topics [][]string `json:"topics,omitempty"`
	// Events selects logs by event: a signature "Transfer(address,address,uint256)",
	// a human-readable declaration "event Transfer(address indexed from, address indexed to, uint256 value)",
	// or a bare name "Transfer" that the ABI (or the built-in set) defines.
	Events []string `json:"events,omitempty"`
	// ABI is a contract ABI (JSON array) used to decode and name arguments.
	ABI json.RawMessage `json:"abi,omitempty"`
	// Where holds conditions on decoded arguments, all of which must hold,
	// e.g. "value >= 1000000", "to == 0xabc..", "from in (0x.., 0x..) or value > 5".
	Where []string `json:"where,omitempty"`
}
