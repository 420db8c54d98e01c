package devnet

// The faults a test or the control API injects by hand (Run injects the
// same ones at the configured rates): pauses, stalls, malformed frames,
// rate limits and a lagging eth_getLogs.

import (
	"sync/atomic"
	"time"
)

// Pause stops Run from mining (and from its automatic faults) until Resume;
// everything else keeps answering. A test pauses to read a chain that no
// longer changes; Mine and the control API still work while paused.
func (n *Node) Pause() { n.paused.Store(true) }

// Resume lets Run mine again after Pause.
func (n *Node) Resume() { n.paused.Store(false) }

// Stall stops answering requests and sending notifications for d. A later
// call replaces the deadline (Stall(0) ends a stall now).
func (n *Node) Stall(d time.Duration) {
	n.stallMu.Lock()
	n.stallUntil.Store(time.Now().Add(d).UnixNano())
	close(n.stallCh)
	n.stallCh = make(chan struct{})
	n.stallMu.Unlock()
}

// MalformedNext makes the next k outgoing WebSocket frames malformed, cycling
// through invalid JSON, truncated JSON, a wrong jsonrpc version and an
// unknown id / subscription. Each malformed frame replaces the real one.
func (n *Node) MalformedNext(k int) { n.malformed.Add(int64(k)) }

// RateLimitNext makes the next k calls answer -32005 "rate limit exceeded"
// (over HTTP with status 429).
func (n *Node) RateLimitNext(k int) { n.ratelimit.Add(int64(k)) }

// EmptyLogsOnceNext arms the lagging-provider fault: for the next mined block
// that has logs, the first eth_getLogs by its blockHash answers [].
func (n *Node) EmptyLogsOnceNext() { n.emptyArmed.Store(true) }

// waitStall blocks while the node is stalled, or until done closes.
func (n *Node) waitStall(done <-chan struct{}) bool {
	if time.Now().UnixNano() >= n.stallUntil.Load() {
		return true
	}
	for {
		n.stallMu.Lock()
		changed := n.stallCh
		n.stallMu.Unlock()
		d := time.Until(time.Unix(0, n.stallUntil.Load()))
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-done:
			t.Stop()
			return false
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

// takeArmed takes one from a fault armed for the next k frames or calls
// (MalformedNext, RateLimitNext), reporting whether this one gets it.
func takeArmed(k *atomic.Int64) bool {
	for {
		v := k.Load()
		if v <= 0 {
			return false
		}
		if k.CompareAndSwap(v, v-1) {
			return true
		}
	}
}
