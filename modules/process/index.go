package process

import (
	"sync"

	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
)

// target is one enabled endpoint with its compiled filter.
type target struct {
	ep hook.Endpoint
	m  *filter.Matcher
}

// direct reports whether the endpoint's events become messages at once
// (no confirmations or finality stage to wait for, no batch to fill).
func (t *target) direct() bool { return !t.ep.Held() && !t.ep.Batching() }

type pairKey struct{ addr, topic0 string }

// chainIndex finds the endpoints a log may match on one chain. An endpoint
// sits in exactly one family of buckets, chosen by the shape of its filter,
// so a lookup needs no deduplication.
type chainIndex struct {
	pair   map[pairKey][]*target // address and topic0 both constrained
	byAddr map[string][]*target  // address constrained, any topic0
	byT0   map[string][]*target  // topic0 constrained, any address
	any    []*target             // neither
}

func newChainIndex() *chainIndex {
	return &chainIndex{pair: map[pairKey][]*target{}, byAddr: map[string][]*target{}, byT0: map[string][]*target{}}
}

// index is the in-memory endpoint index: chain -> address/topic0 buckets.
// Matching takes the read lock once per batch of stream entries.
type index struct {
	mu     sync.RWMutex
	byID   map[string]*target
	chains map[uint64]*chainIndex
}

func newIndex() *index {
	return &index{byID: map[string]*target{}, chains: map[uint64]*chainIndex{}}
}

// put adds or replaces an endpoint (caller holds the write lock).
func (ix *index) put(t *target) {
	ix.remove(t.ep.ID)
	ix.byID[t.ep.ID] = t
	for _, c := range t.m.Chains {
		ci := ix.chains[c]
		if ci == nil {
			ci = newChainIndex()
			ix.chains[c] = ci
		}
		switch {
		case len(t.m.Addresses) > 0 && len(t.m.Topic0s) > 0:
			for _, a := range t.m.Addresses {
				for _, t0 := range t.m.Topic0s {
					k := pairKey{a, t0}
					ci.pair[k] = append(ci.pair[k], t)
				}
			}
		case len(t.m.Addresses) > 0:
			for _, a := range t.m.Addresses {
				ci.byAddr[a] = append(ci.byAddr[a], t)
			}
		case len(t.m.Topic0s) > 0:
			for _, t0 := range t.m.Topic0s {
				ci.byT0[t0] = append(ci.byT0[t0], t)
			}
		default:
			ci.any = append(ci.any, t)
		}
	}
}

func without(list []*target, id string) []*target {
	out := list[:0:0]
	for _, t := range list {
		if t.ep.ID != id {
			out = append(out, t)
		}
	}
	return out
}

// remove drops an endpoint (caller holds the write lock).
func (ix *index) remove(id string) {
	old := ix.byID[id]
	if old == nil {
		return
	}
	delete(ix.byID, id)
	for _, c := range old.m.Chains {
		ci := ix.chains[c]
		if ci == nil {
			continue
		}
		for _, a := range old.m.Addresses {
			for _, t0 := range old.m.Topic0s {
				k := pairKey{a, t0}
				if l := without(ci.pair[k], id); len(l) > 0 {
					ci.pair[k] = l
				} else {
					delete(ci.pair, k)
				}
			}
			if l := without(ci.byAddr[a], id); len(l) > 0 {
				ci.byAddr[a] = l
			} else {
				delete(ci.byAddr, a)
			}
		}
		for _, t0 := range old.m.Topic0s {
			if l := without(ci.byT0[t0], id); len(l) > 0 {
				ci.byT0[t0] = l
			} else {
				delete(ci.byT0, t0)
			}
		}
		ci.any = without(ci.any, id)
	}
}

// candidates calls fn for every endpoint whose chain, address and topic0
// keys fit the log (caller holds the read lock).
func (ix *index) candidates(ev *hook.Event, fn func(*target)) {
	ci := ix.chains[ev.Chain.ID]
	if ci == nil {
		return
	}
	addr := ev.Log.Address
	t0 := ""
	if len(ev.Log.Topics) > 0 {
		t0 = ev.Log.Topics[0]
	}
	for _, t := range ci.pair[pairKey{addr, t0}] {
		fn(t)
	}
	for _, t := range ci.byAddr[addr] {
		fn(t)
	}
	if t0 != "" {
		for _, t := range ci.byT0[t0] {
			fn(t)
		}
	}
	for _, t := range ci.any {
		fn(t)
	}
}

func (ix *index) get(id string) *target {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.byID[id]
}

func (ix *index) size() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.byID)
}
