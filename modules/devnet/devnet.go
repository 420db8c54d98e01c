// Package devnet is a simulated EVM chain that speaks real JSON-RPC 2.0 over
// WebSocket and HTTP. Its chain is deterministic from a seed; its faults
// (reorgs, dropped connections, stalls, skipped heads, malformed frames, rate
// limits, lagging eth_getLogs) are injected by method calls, by a control API
// under /control/, or automatically at configured rates.
package devnet

import (
	"context"
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
