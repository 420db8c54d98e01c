// Package devnet is a simulated EVM chain that speaks real JSON-RPC 2.0 over
// WebSocket and HTTP. Its chain is deterministic from a seed; its faults
// (reorgs, dropped connections, stalls, skipped heads, malformed frames, rate
// limits, lagging eth_getLogs) are injected by method calls, by a control API
// under /control/, or automatically at configured rates.
package devnet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Config configures a Node. The zero value is usable: chain id 31337, no
// automatic mining, no logs.
type Config struct {
	ChainID       uint64        // default 31337
	Seed          int64         // same seed and same operations -> same chain
	BlockTime     time.Duration // 0 = no automatic mining; blocks only via Mine
	LogsPerBlock  int           // average logs per block (uniform 0..2*avg); exact when FixedLogs
	FixedLogs     bool          // every block (except genesis) has exactly LogsPerBlock logs
	MaxLogRange   uint64        // max toBlock-fromBlock+1 of eth_getLogs; 0 = unlimited; exceeding -> -32005
	MaxLogResults int           // max logs one eth_getLogs returns; 0 = unlimited; exceeding -> -32005
	// FinalizedDepth is how far the "finalized" tag lags the head. 0 means 64.
	FinalizedDepth uint64
	// SafeDepth is how far the "safe" tag lags the head. 0 means half of
	// FinalizedDepth. Both can be changed, stalled and jumped at run time
	// (finality.go, /control/finality).
	SafeDepth uint64
	// RetainBlocks keeps the logs and JSON of only the newest N canonical
	// blocks in memory; older blocks keep their header and are rebuilt
	// from the seed when asked for (same hashes, same logs). 0 keeps all.
	RetainBlocks uint64
	// RetainLogs also bounds the logs kept that way, whatever the block
	// size: once the retained blocks hold more, the oldest are compacted
	// (the newest block always stays whole). 0 = no bound by logs.
	RetainLogs int

	// Automatic faults, counted in blocks mined by Run. 0 disables each.
	ReorgEvery     int           // every N blocks, a Reorg(ReorgDepth) instead of a plain block
	ReorgDepth     int           // default 1 when ReorgEvery > 0
	SkipEvery      int           // every N blocks, SkipHeads(SkipCount)
	SkipCount      int           // default 3 when SkipEvery > 0
	DropEvery      int           // every N blocks, DropConnections
	StallEvery     int           // every N blocks, Stall(StallFor)
	StallFor       time.Duration // default 2s when StallEvery > 0
	MalformedEvery int           // every N blocks, MalformedNext(1)
	RateLimitEvery int           // every N blocks, RateLimitNext(1)
	EmptyLogsEvery int           // every N blocks, EmptyLogsOnceNext
}

// Block is a block of the devnet chain.
type Block struct {
	Number     uint64
	Hash       common.Hash
	ParentHash common.Hash
	Time       uint64
	Bloom      types.Bloom
	TxHashes   []common.Hash
	Logs       []types.Log // BlockHash, BlockNumber, TxHash, TxIndex, Index, BlockTimestamp set
}

// Stats are counters for tests and operators.
type Stats struct {
	Requests           map[string]uint64 // JSON-RPC calls by method (unknown methods too)
	ConnectionsOpen    int               // WebSocket connections open now
	ConnectionsTotal   uint64            // WebSocket connections ever accepted
	ConnectionsDropped uint64            // closed by DropConnections or by queue overflow
	SubscriptionsOpen  int               // active eth_subscribe subscriptions
	SubscriptionsTotal uint64
	Notifications      uint64 // eth_subscription frames queued
	Malformed          uint64 // malformed frames sent
	RateLimited        uint64 // calls answered with the rate-limit error
	EmptyLogsServed    uint64 // eth_getLogs by blockHash answered [] by EmptyLogsOnceNext
	Reorgs             uint64
	Blocks             uint64 // blocks mined (all branches, genesis excluded)
	Rebuilt            uint64 // compacted blocks rebuilt from the seed (RetainBlocks)
}

// Node is one simulated chain with its RPC server state.
type Node struct {
	cfg          Config
	world        *world
	secsPerBlock uint64

	mineMu   sync.Mutex // serializes chain changes and their announcements
	mu       sync.RWMutex
	canon    []*block // canon[i].Number == i
	fullFrom uint64   // canonical blocks below it (genesis aside) are compacted
	fullLogs int      // logs of the canonical blocks from fullFrom on
	byHash   map[common.Hash]*block
	orphaned []*block
	branch   uint64

	fin finality // the safe and finalized tags

	paused     atomic.Bool  // Run mines nothing while set (Pause/Resume)
	stallUntil atomic.Int64 // unix nanos
	stallMu    sync.Mutex
	stallCh    chan struct{} // closed and replaced whenever Stall changes
	malformed  atomic.Int64
	malformSeq atomic.Uint64
	ratelimit  atomic.Int64
	emptyArmed atomic.Bool
	emptyMu    sync.Mutex
	emptyOnce  map[common.Hash]bool

	cacheMu    sync.Mutex
	cache      map[common.Hash]*block // rebuilt compacted blocks
	cacheOrder []common.Hash
	cacheLogs  int

	connsMu sync.Mutex
	conns   map[*wsConn]struct{}

	statsMu  sync.Mutex
	requests map[string]uint64
	stats    Stats
}

// New creates a chain holding only its genesis block.
func New(cfg Config) *Node {
	if cfg.ChainID == 0 {
		cfg.ChainID = 31337
	}
	if cfg.FinalizedDepth == 0 {
		cfg.FinalizedDepth = 64
	}
	if cfg.SafeDepth == 0 {
		cfg.SafeDepth = cfg.FinalizedDepth / 2
	}
	if cfg.ReorgEvery > 0 && cfg.ReorgDepth <= 0 {
		cfg.ReorgDepth = 1
	}
	if cfg.SkipEvery > 0 && cfg.SkipCount <= 0 {
		cfg.SkipCount = 3
	}
	if cfg.StallEvery > 0 && cfg.StallFor <= 0 {
		cfg.StallFor = 2 * time.Second
	}
	n := &Node{
		cfg:          cfg,
		world:        newWorld(cfg.Seed),
		secsPerBlock: 1,
		byHash:       make(map[common.Hash]*block),
		emptyOnce:    make(map[common.Hash]bool),
		conns:        make(map[*wsConn]struct{}),
		requests:     make(map[string]uint64),
		stallCh:      make(chan struct{}),
		cache:        make(map[common.Hash]*block),
	}
	n.fin.safeDepth, n.fin.finalizedDepth = cfg.SafeDepth, cfg.FinalizedDepth
	if s := uint64(cfg.BlockTime.Round(time.Second) / time.Second); s > 1 {
		n.secsPerBlock = s
	}
	g := n.buildBlock(nil, 0, 0)
	n.canon = []*block{g}
	n.byHash[g.Hash] = g
	return n
}

// ChainID returns the chain id the node answers with.
func (n *Node) ChainID() uint64 { return n.cfg.ChainID }

// Contracts returns every contract address that emits logs on this chain.
func (n *Node) Contracts() []common.Address { return n.world.contracts() }

// Run mines a block every BlockTime, applying the automatic faults, until ctx
// is done. With BlockTime 0 it only waits for ctx. It returns nil on cancel.
func (n *Node) Run(ctx context.Context) error {
	if n.cfg.BlockTime <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(n.cfg.BlockTime)
	defer t.Stop()
	var tick int
	every := func(k int) bool { return k > 0 && tick%k == 0 }
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n.paused.Load() {
			continue
		}
		tick++
		switch {
		case every(n.cfg.ReorgEvery) && n.Head().Number >= uint64(n.cfg.ReorgDepth):
			n.Reorg(n.cfg.ReorgDepth)
		case every(n.cfg.SkipEvery):
			n.SkipHeads(n.cfg.SkipCount)
		default:
			n.Mine(1)
		}
		if every(n.cfg.DropEvery) {
			n.DropConnections()
		}
		if every(n.cfg.StallEvery) {
			n.Stall(n.cfg.StallFor)
		}
		if every(n.cfg.MalformedEvery) {
			n.MalformedNext(1)
		}
		if every(n.cfg.RateLimitEvery) {
			n.RateLimitNext(1)
		}
		if every(n.cfg.EmptyLogsEvery) {
			n.EmptyLogsOnceNext()
		}
	}
}

// mineLocked appends k blocks to the canonical chain. Caller holds mineMu.
func (n *Node) mineLocked(k int) []*block {
	out := make([]*block, 0, k)
	for i := 0; i < k; i++ {
		n.mu.RLock()
		parent := n.canon[len(n.canon)-1]
		branch := n.branch
		n.mu.RUnlock()
		b := n.buildBlock(parent, parent.Number+1, branch)
		n.mu.Lock()
		n.canon = append(n.canon, b)
		n.byHash[b.Hash] = b
		n.fullLogs += len(b.Logs)
		n.compactLocked(b.Number)
		n.mu.Unlock()
		if len(b.Logs) > 0 && n.emptyArmed.CompareAndSwap(true, false) {
			n.emptyMu.Lock()
			n.emptyOnce[b.Hash] = true
			n.emptyMu.Unlock()
		}
		out = append(out, b)
	}
	n.statsMu.Lock()
	n.stats.Blocks += uint64(k)
	n.statsMu.Unlock()
	return out
}

// compactLocked compacts the oldest whole canonical blocks beyond
// RetainBlocks or RetainLogs; head stays whole. Caller holds mu.
func (n *Node) compactLocked(head uint64) {
	r, maxLogs := n.cfg.RetainBlocks, n.cfg.RetainLogs
	if r == 0 && maxLogs <= 0 {
		return
	}
	for n.fullFrom < head {
		if !(r > 0 && head-n.fullFrom >= r) && !(maxLogs > 0 && n.fullLogs > maxLogs) {
			return
		}
		if old := n.canon[n.fullFrom]; !old.compact && old.Number > 0 {
			st := old.stub()
			n.canon[n.fullFrom] = st
			n.byHash[st.Hash] = st
			n.fullLogs -= len(old.Logs)
		}
		n.fullFrom++
	}
}

// Mine mines k blocks now and announces each to newHeads and logs subscribers.
func (n *Node) Mine(k int) []Block {
	if k <= 0 {
		return nil
	}
	n.mineMu.Lock()
	defer n.mineMu.Unlock()
	bs := n.mineLocked(k)
	for _, b := range bs {
		n.announce(b, true)
	}
	return publicBlocks(bs)
}

// SkipHeads mines k blocks but announces only the last one to newHeads (a
// head jump). Logs subscribers still get the logs of every block.
func (n *Node) SkipHeads(k int) {
	if k <= 0 {
		return
	}
	n.mineMu.Lock()
	defer n.mineMu.Unlock()
	bs := n.mineLocked(k)
	for i, b := range bs {
		n.announce(b, i == len(bs)-1)
	}
}

// Reorg orphans the last depth blocks and mines a replacement branch of
// depth+1 blocks (different hashes and logs). Logs subscribers get removed
// logs for the orphaned blocks, then the new logs; newHeads subscribers get
// the new branch's heads. It returns the new branch. depth is clamped so
// genesis stays.
func (n *Node) Reorg(depth int) []Block {
	if depth <= 0 {
		return n.Mine(1)
	}
	n.mineMu.Lock()
	defer n.mineMu.Unlock()
	n.mu.Lock()
	head := len(n.canon) - 1
	if depth > head {
		depth = head
	}
	old := append([]*block(nil), n.canon[head-depth+1:]...)
	n.canon = n.canon[:head-depth+1]
	for _, b := range old {
		if !b.compact {
			n.fullLogs -= len(b.Logs)
		}
	}
	n.fullFrom = min(n.fullFrom, uint64(len(n.canon)))
	n.orphaned = append(n.orphaned, old...)
	n.branch++
	n.mu.Unlock()
	n.statsMu.Lock()
	n.stats.Reorgs++
	n.statsMu.Unlock()
	bs := n.mineLocked(depth + 1)
	n.announceRemoved(old)
	for _, b := range bs {
		n.announce(b, true)
	}
	return publicBlocks(bs)
}

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

// Head returns the canonical head.
func (n *Node) Head() Block {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.canon[len(n.canon)-1].public()
}

func (n *Node) headBlock() *block {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.canon[len(n.canon)-1]
}

// BlockByNumber returns the canonical block num.
func (n *Node) BlockByNumber(num uint64) (Block, bool) {
	n.mu.RLock()
	var b *block
	if num < uint64(len(n.canon)) {
		b = n.canon[num]
	}
	n.mu.RUnlock()
	if b == nil {
		return Block{}, false
	}
	return n.full(b).public(), true
}

// BlockByHash returns any block ever mined (canonical or orphaned).
func (n *Node) BlockByHash(h common.Hash) (Block, bool) {
	n.mu.RLock()
	b := n.byHash[h]
	n.mu.RUnlock()
	if b == nil {
		return Block{}, false
	}
	return n.full(b).public(), true
}

// CanonicalLogs returns the logs of canonical blocks from..to (inclusive,
// clamped to the head).
func (n *Node) CanonicalLogs(from, to uint64) []types.Log {
	n.mu.RLock()
	var blocks []*block
	for i := from; i <= to && i < uint64(len(n.canon)); i++ {
		blocks = append(blocks, n.canon[i])
	}
	n.mu.RUnlock()
	var out []types.Log
	for _, b := range blocks {
		out = append(out, n.full(b).Logs...)
	}
	return out
}

// Orphaned returns every block ever orphaned by Reorg, in orphaning order.
func (n *Node) Orphaned() []Block {
	n.mu.RLock()
	bs := append([]*block(nil), n.orphaned...)
	n.mu.RUnlock()
	for i, b := range bs {
		bs[i] = n.full(b)
	}
	return publicBlocks(bs)
}

// Stats returns a snapshot of the counters.
func (n *Node) Stats() Stats {
	n.statsMu.Lock()
	s := n.stats
	s.Requests = make(map[string]uint64, len(n.requests))
	for k, v := range n.requests {
		s.Requests[k] = v
	}
	n.statsMu.Unlock()
	n.connsMu.Lock()
	s.ConnectionsOpen = len(n.conns)
	subs := 0
	for c := range n.conns {
		c.subsMu.Lock()
		subs += len(c.subs)
		c.subsMu.Unlock()
	}
	n.connsMu.Unlock()
	s.SubscriptionsOpen = subs
	return s
}

func (n *Node) count(f func(s *Stats)) {
	n.statsMu.Lock()
	f(&n.stats)
	n.statsMu.Unlock()
}

func publicBlocks(bs []*block) []Block {
	out := make([]Block, len(bs))
	for i, b := range bs {
		out[i] = b.public()
	}
	return out
}

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

// stub is what is kept of b once compacted: enough to find it and rebuild
// it (Node.full), which renders everything else again on demand.
func (b *block) stub() *block {
	return &block{Number: b.Number, Hash: b.Hash, ParentHash: b.ParentHash, Time: b.Time, branch: b.branch, compact: true}
}

// cacheBlocks bounds the cache of rebuilt blocks; with RetainLogs set, it
// also holds at most half that many logs (and at least one block).
const cacheBlocks = 64

// full returns b with its logs and transactions, rebuilding a compacted
// block from the seed (cached for the next requests).
func (n *Node) full(b *block) *block {
	if !b.compact {
		return b
	}
	n.cacheMu.Lock()
	c, ok := n.cache[b.Hash]
	n.cacheMu.Unlock()
	if ok {
		return c
	}
	parent := &block{}
	parent.Hash = b.ParentHash
	c = n.buildBlock(parent, b.Number, b.branch)
	if c.Hash != b.Hash {
		panic(fmt.Sprintf("devnet: rebuilt block %d has hash %s, want %s", b.Number, c.Hash, b.Hash))
	}
	n.cacheMu.Lock()
	if _, ok := n.cache[b.Hash]; !ok {
		n.cache[b.Hash] = c
		n.cacheOrder = append(n.cacheOrder, b.Hash)
		n.cacheLogs += len(c.Logs)
		for len(n.cacheOrder) > 1 && (len(n.cacheOrder) > cacheBlocks || (n.cfg.RetainLogs > 0 && n.cacheLogs > n.cfg.RetainLogs/2)) {
			n.cacheLogs -= len(n.cache[n.cacheOrder[0]].Logs)
			delete(n.cache, n.cacheOrder[0])
			n.cacheOrder = n.cacheOrder[1:]
		}
	}
	n.cacheMu.Unlock()
	n.count(func(s *Stats) { s.Rebuilt++ })
	return c
}
