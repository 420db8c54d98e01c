// Package endpoint is the service layer over the endpoints table: create,
// read, list, change, enable/disable, delete, and signing-secret handling,
// every call scoped to the caller (hook.Scope) and validated with errors
// that name the bad field. The CLI uses it now and the admin API later.
//
// After every change the service notifies Postgres channel
// "ethhook_endpoints" inside the transaction and publishes the endpoint id
// on hook.Keys.EndpointsChanged() after commit, so process and deliver
// refresh their in-memory views within a second.
package endpoint

import (
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/seal"
)

// NotifyChannel is the Postgres channel that carries changed endpoint ids.
const NotifyChannel = "ethhook_endpoints"

// Limits on endpoint settings.
const (
	MaxConfirmations = 1000
	MaxBatch         = 1000
	MaxBatchWaitMS   = 60000
	MaxRateLimit     = 100000
	MaxRetries       = 20
	DefaultLimit     = 50
	MaxLimit         = 500
)

// ErrLimitReached means the application's plan allows no more endpoints.
var ErrLimitReached = errors.New("the application's plan allows no more endpoints")

// Input is a new endpoint.
type Input struct {
	URL         string      `json:"url"`
	Description string      `json:"description"`
	Filter      hook.Filter `json:"filter"`
	// Confirmations nil takes the highest default of the endpoint's chains.
	Confirmations *int `json:"confirmations"`
	// Finality is latest, confirmations:N, safe or finalized; nil keeps
	// Confirmations' meaning (it sets the same count when both are given).
	Finality *string `json:"finality"`
	// TwoPhase delivers each log at once and a log.finalized (same event id)
	// at the finality stage; needs a stage other than latest, no batching.
	TwoPhase       bool     `json:"two_phase"`
	BatchMax       int      `json:"batch_max"`
	BatchWaitMS    int      `json:"batch_wait_ms"`
	RateLimit      int      `json:"rate_limit"`
	RetrySchedule  []string `json:"retry_schedule"`
	AllowRedirects bool     `json:"allow_redirects"`
	// FromBlock, when set, also delivers the matching events from this
	// block up to the live head (the endpoint's history; see history.go).
	FromBlock *uint64 `json:"from_block,omitempty"`
	// Ordering is "parallel" (default, also when empty) or "fifo".
	Ordering string `json:"ordering,omitempty"`
	// FIFOKey splits a FIFO endpoint's order by contract, topic1, topic2 or topic3.
	FIFOKey string `json:"fifo_key,omitempty"`
	// OpsEvents makes an operational endpoint (admin only): it receives
	// EthHook's own events of these types (package ops), not chain logs.
	OpsEvents []string `json:"ops_events,omitempty"`
	// Headers are static headers sent with every delivery (see MaxHeaders).
	Headers map[string]string `json:"headers,omitempty"`
	// Signature is "hmac" (default, also when empty) or "ed25519".
	Signature string `json:"signature,omitempty"`
}

// Patch changes an endpoint; nil fields stay as they are.
type Patch struct {
	URL            *string      `json:"url"`
	Description    *string      `json:"description"`
	Filter         *hook.Filter `json:"filter"`
	Confirmations  *int         `json:"confirmations"` // sets confirmations:N (latest for 0)
	Finality       *string      `json:"finality"`      // latest, confirmations:N, safe or finalized
	TwoPhase       *bool        `json:"two_phase"`
	BatchMax       *int         `json:"batch_max"`
	BatchWaitMS    *int         `json:"batch_wait_ms"`
	RateLimit      *int         `json:"rate_limit"`
	RetrySchedule  *[]string    `json:"retry_schedule"`
	AllowRedirects *bool        `json:"allow_redirects"`
	Ordering       *string      `json:"ordering"`
	FIFOKey        *string      `json:"fifo_key"`
	OpsEvents      *[]string    `json:"ops_events"`
	// Headers replaces the whole set; {} removes them all.
	Headers *map[string]string `json:"headers"`
	// Signature switches the scheme: a new secret of that scheme signs at
	// once and the current one keeps signing for DefaultOverlap.
	Signature *string `json:"signature"`
}

// Service is the endpoint service.
type Service struct {
	pool   *pgxpool.Pool
	box    *seal.Box
	rdb    rueidis.Client // may be nil: then only Postgres NOTIFY announces changes
	keys   hook.Keys
	chains []config.Chain
}

// New returns the service. box seals signing secrets; rdb (optional)
// publishes changes; chains (optional) give per-chain default
// confirmations, falling back to the built-in registry.
func New(pool *pgxpool.Pool, box *seal.Box, rdb rueidis.Client, keys hook.Keys, chains []config.Chain) *Service {
	return &Service{pool: pool, box: box, rdb: rdb, keys: keys, chains: chains}
}
