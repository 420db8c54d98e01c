package hook

import (
	"encoding/json"
	"strconv"
	"strings"
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
	Confirmations  int      `json:"confirmations"`      // 0 = at once (may see log.removed)
	BatchMax       int      `json:"batch_max"`          // >1 batches up to this many events per POST
	BatchWaitMS    int      `json:"batch_wait_ms"`      // longest an event waits for its batch to fill
	RateLimit      int      `json:"rate_limit"`         // events/s, 0 = plan default
	RetrySchedule  []string `json:"retry_schedule"`     // empty = the configured default
	AllowRedirects bool     `json:"allow_redirects"`    // follow HTTP redirects when delivering
	Stage          string   `json:"-"`                  // "" (Confirmations counts), StageSafe or StageFinalized (the node's tags)
	Finality       string   `json:"finality"`           // the API's view: latest, confirmations:N, safe, finalized (FormatFinality)
	TwoPhase       bool     `json:"two_phase"`          // a log at once, then log.finalized (same event id) at the stage
	Ordering       string   `json:"ordering"`           // OrderingParallel (default) or OrderingFIFO
	FIFOKey        string   `json:"fifo_key,omitempty"` // FIFO per this log field: contract, topic1..topic3; "" = one order per chain
	// OpsEvents, when not empty, makes an operational endpoint: it gets
	// EthHook's own events of these types (package ops), never chain logs.
	OpsEvents []string `json:"ops_events,omitempty"`
	// Headers are static headers sent with every delivery (canonical
	// names); they never replace the Standard Webhooks headers.
	Headers map[string]string `json:"headers,omitempty"`
	// Signature is the scheme of the endpoint's signing secret: "hmac"
	// (Standard Webhooks v1, a shared whsec_ secret; the default) or
	// "ed25519" (v1a; receivers verify with the whpk_ public key).
	Signature string    `json:"signature"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// History is set for an endpoint created with from_block (filled by
	// the endpoint service's Create and Get, not by the pipeline's loads).
	History *History `json:"history,omitempty"`
}

// Held reports whether the endpoint's events wait before their (final)
// message: for confirmations or a finality stage.
func (e *Endpoint) Held() bool { return e.Confirmations > 0 || e.Stage != "" }

// Delivery orderings of an endpoint.
const (
	OrderingParallel = "parallel" // up to the concurrency cap at once, in no particular order
	OrderingFIFO     = "fifo"     // in chain order, one at a time per ordering group
)

// FIFOKeys are the values of Endpoint.FIFOKey besides "" (one order per chain).
var FIFOKeys = []string{"contract", "topic1", "topic2", "topic3"}

// FIFO reports whether the endpoint gets its webhooks in chain order.
func (e *Endpoint) FIFO() bool { return e.Ordering == OrderingFIFO }

// FIFOGroup is the ordering group of a log for a FIFO endpoint with key
// fifoKey: "<chain id>", or "<chain id>/<value>" where value is the log's
// contract address or topic (empty when the log has no such topic). A FIFO
// endpoint's webhooks keep chain order within a group; groups do not wait
// for each other. Block numbers of two chains do not compare, so each chain
// is its own order.
func FIFOGroup(chainID uint64, fifoKey, address string, topics []string) string {
	g := strconv.FormatUint(chainID, 10)
	switch fifoKey {
	case "contract":
		return g + "/" + strings.ToLower(address)
	case "topic1", "topic2", "topic3":
		if i := int(fifoKey[5] - '0'); i < len(topics) {
			return g + "/" + strings.ToLower(topics[i])
		}
		return g + "/"
	}
	return g
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
