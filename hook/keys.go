package hook

import "strconv"

// Keys builds Redis key names under one configurable prefix (default
// "ethhook:"). Per-chain keys carry the chain id as a hash tag so every key a
// chain's atomic commit touches lands in one Redis Cluster slot.
type Keys struct{ Prefix string }

// ChainTag is "{<chain id>}", the hash tag shared by a chain's keys.
func ChainTag(chainID uint64) string { return "{" + strconv.FormatUint(chainID, 10) + "}" }

// Events is the chain's events stream: `<prefix>{<chain_id>}:events`.
func (k Keys) Events(chainID uint64) string { return k.Chain(chainID, "events") }

// EventsGroup is the consumer group process reads every events stream
// with. Ingest never trims an entry this group has not acknowledged, and
// holds back new blocks while too many wait (backpressure).
const EventsGroup = "process"

// Chain returns `<prefix>{<chain_id>}:<name>` for any other per-chain key.
func (k Keys) Chain(chainID uint64, name string) string {
	return k.Prefix + ChainTag(chainID) + ":" + name
}

// Key returns `<prefix><name>` for a key that belongs to no chain.
func (k Keys) Key(name string) string { return k.Prefix + name }
