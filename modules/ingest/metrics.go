package ingest

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// chainLabels start every ingest series: the chain's configured name and its
// numeric id, the same two labels process uses, so queries join on either.
var chainLabels = []string{"chain", "chain_id"}

// chainLabelValues are the values of chainLabels for ch.
func chainLabelValues(name string, id uint64) prometheus.Labels {
	return prometheus.Labels{"chain": name, "chain_id": strconv.FormatUint(id, 10)}
}

type metrics struct {
	head, committed, lag, leaseHolder    *prometheus.GaugeVec
	heldBack                             *prometheus.GaugeVec
	logs                                 *prometheus.CounterVec
	blocks, backfilled, reconnects       *prometheus.CounterVec
	reorgs                               *prometheus.HistogramVec
	rpcErrors                            *prometheus.CounterVec
	rpcLatency                           *prometheus.HistogramVec
	malformed, wrongChain, oversized     *prometheus.CounterVec
	restarts, rejectedLogs, emptyRefetch *prometheus.CounterVec
	leaseLost, leaseRetaken              *prometheus.CounterVec
	droppedHeads, invalid, headJumps     *prometheus.CounterVec
	redisLost                            *prometheus.CounterVec
	finality                             *prometheus.GaugeVec
	finalityRefused, foreign, deepReorgs *prometheus.CounterVec
	providerHealthy, quorumWaiting       *prometheus.GaugeVec
	providerDisagreements                *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ethhook_ingest_" + name, Help: help}, chainLabels)
	}
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_ingest_" + name, Help: help}, append(chainLabels[:len(chainLabels):len(chainLabels)], labels...))
	}
	m := &metrics{
		head:         g("head_block", "Latest head block number seen from the node."),
		committed:    g("committed_block", "Last block committed to the events stream."),
		lag:          g("lag_blocks", "Head minus last committed block."),
		leaseHolder:  g("lease_holder", "1 when this process holds the chain's writer lease."),
		heldBack:     g("held_back", "1 while new blocks wait for process: its unacknowledged entries reached ingest.stream_max_len."),
		logs:         c("logs_total", "Stream entries published, by type (log, log.removed).", "type"),
		blocks:       c("blocks_total", "Blocks committed."),
		backfilled:   c("backfilled_blocks_total", "Blocks committed by ranged backfill."),
		reconnects:   c("reconnects_total", "WebSocket (re)connection attempts after the first."),
		rpcErrors:    c("rpc_errors_total", "JSON-RPC call failures by error code (or transport, timeout, too_large, malformed).", "code"),
		malformed:    c("malformed_frames_total", "Frames from the node that were not valid JSON-RPC."),
		wrongChain:   c("wrong_chain_id_total", "Connections refused because eth_chainId did not match."),
		oversized:    c("oversized_messages_total", "Messages above the read limit."),
		restarts:     c("chain_restarts_total", "Chain goroutine restarts after a failure or panic.", "reason"),
		rejectedLogs: c("rejected_log_answers_total", "eth_getLogs answers rejected (wrong block hash or number)."),
		emptyRefetch: c("empty_logs_refetch_total", "eth_getLogs answers of [] for a block whose logsBloom is not empty, fetched again."),
		leaseLost:    c("lease_lost_total", "Times this process lost the chain's writer lease (another holder or a moved fence) and went back to standby."),
		leaseRetaken: c("lease_retaken_total", "Times this process found its lease lapsed (not renewed in time) and took it again with the same fencing token."),
		droppedHeads: c("dropped_notifications_total", "newHeads notifications dropped to keep the queue within ingest.notification_queue_bytes (heads are hints: the gap is backfilled)."),
		invalid:      c("invalid_answers_total", "Node answers refused because a header or log broke the JSON-RPC spec or a bound (hex fields, sizes, number ranges)."),
		redisLost:    c("redis_state_lost_total", "Sessions that found Redis without the chain's state (no cursor, or one older than the durable cursor) and resumed with a backfill, by what was found (empty, behind).", "found"),
		headJumps:    c("head_jumps_total", "Heads more than ingest.max_head_jump past the known head, by outcome (confirmed, refused).", "outcome"),
		finality: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ethhook_ingest_finality_block",
			Help: "The node's safe and finalized blocks as published to the events stream, by tag."}, append(chainLabels[:len(chainLabels):len(chainLabels)], "tag")),
		finalityRefused: c("finality_refused_total", "Safe/finalized answers not published, by reason (order: finalized above safe; backwards: below the published one; not_committed: not the block ingest committed).", "reason"),
		foreign:         c("foreign_node_total", "Sessions given up because the node contradicted what ingest committed or reported finalized (a wrong or broken node; nothing was unwound), by reason.", "reason"),
		deepReorgs:      c("deep_reorgs_total", "Reorgs deeper than the chain's reorg_depth (entries kept) but within max_reorg_depth, unwound by retracting whole blocks."),
		providerHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ethhook_ingest_provider_healthy",
			Help: "With the chain's quorum set: 1 while the provider (redacted URL) agrees with the quorum, 0 while it lags, disagrees or cannot be reached."}, append(chainLabels[:len(chainLabels):len(chainLabels)], "provider")),
		providerDisagreements: c("provider_disagreements_total", "With the chain's quorum set: answers of a provider that gave another hash for a block than the session's provider (or, for the session's provider, blocks the others outvoted).", "provider"),
		quorumWaiting:         g("quorum_waiting", "With the chain's quorum set: 1 while a block waits because fewer providers than the quorum agree on it."),
		reorgs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ethhook_ingest_reorg_depth_blocks", Help: "Reorgs by depth (orphaned blocks).",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 32, 64},
		}, chainLabels),
		rpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ethhook_ingest_rpc_duration_seconds", Help: "JSON-RPC call latency by method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, append(chainLabels[:len(chainLabels):len(chainLabels)], "method")),
	}
	for _, col := range []prometheus.Collector{m.head, m.committed, m.lag, m.leaseHolder, m.heldBack, m.logs, m.blocks, m.backfilled,
		m.reconnects, m.rpcErrors, m.malformed, m.wrongChain, m.oversized, m.restarts, m.rejectedLogs, m.emptyRefetch, m.leaseLost, m.leaseRetaken, m.droppedHeads, m.invalid, m.headJumps, m.redisLost, m.reorgs, m.rpcLatency,
		m.finality, m.finalityRefused, m.foreign, m.deepReorgs, m.providerHealthy, m.providerDisagreements, m.quorumWaiting} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// errorCode is the rpc_errors_total label for err.
func errorCode(err error) string {
	if c := rpc.Code(err); c != 0 {
		return strconv.Itoa(c)
	}
	switch {
	case errors.Is(err, rpc.ErrTooLarge):
		return "too_large"
	case errors.Is(err, rpc.ErrMalformed):
		return "malformed"
	case errors.Is(err, rpc.ErrRateLimited):
		return "429"
	case isTimeout(err):
		return "timeout"
	}
	return "transport"
}

// chainMetrics are one chain's series, curried with its labels.
type chainMetrics struct {
	mHead, mCommitted, mLag, mLease prometheus.Gauge
	mHeldBack                       prometheus.Gauge
	mLogs, mRemoved, mBlocks, mBack prometheus.Counter
	mReconnects, mMalformed, mWrong prometheus.Counter
	mOversized, mRejected, mEmpty   prometheus.Counter
	mDropped, mInvalid              prometheus.Counter
	mLeaseLost, mLeaseRetaken       prometheus.Counter
	mRedisLost                      *prometheus.CounterVec
	mReorg                          prometheus.Observer
	mRPCErr, mHeadJumps, mRestarts  *prometheus.CounterVec
	mRPCLat                         prometheus.ObserverVec
	mFinality                       *prometheus.GaugeVec
	mFinalityRefused, mForeign      *prometheus.CounterVec
	mDeepReorgs                     prometheus.Counter
}

func newChainMetrics(mt *metrics, ch config.Chain) chainMetrics {
	var c chainMetrics
	cl := chainLabelValues(ch.Name, ch.ID)
	c.mHead, c.mCommitted, c.mLag, c.mLease = mt.head.With(cl), mt.committed.With(cl), mt.lag.With(cl), mt.leaseHolder.With(cl)
	logs := mt.logs.MustCurryWith(cl)
	c.mLogs, c.mRemoved = logs.WithLabelValues(hook.TypeLog), logs.WithLabelValues(hook.TypeLogRemoved)
	c.mBlocks, c.mBack, c.mReconnects = mt.blocks.With(cl), mt.backfilled.With(cl), mt.reconnects.With(cl)
	c.mMalformed, c.mWrong, c.mOversized = mt.malformed.With(cl), mt.wrongChain.With(cl), mt.oversized.With(cl)
	c.mRejected, c.mEmpty = mt.rejectedLogs.With(cl), mt.emptyRefetch.With(cl)
	c.mLeaseLost, c.mLeaseRetaken = mt.leaseLost.With(cl), mt.leaseRetaken.With(cl)
	c.mReorg = mt.reorgs.With(cl)
	c.mHeldBack = mt.heldBack.With(cl)
	c.mDropped, c.mInvalid = mt.droppedHeads.With(cl), mt.invalid.With(cl)
	c.mRPCErr = mt.rpcErrors.MustCurryWith(cl)
	c.mHeadJumps = mt.headJumps.MustCurryWith(cl)
	c.mRedisLost = mt.redisLost.MustCurryWith(cl)
	c.mRPCLat = mt.rpcLatency.MustCurryWith(cl)
	c.mRestarts = mt.restarts.MustCurryWith(cl)
	c.mFinality = mt.finality.MustCurryWith(cl)
	c.mFinalityRefused = mt.finalityRefused.MustCurryWith(cl)
	c.mForeign = mt.foreign.MustCurryWith(cl)
	c.mDeepReorgs = mt.deepReorgs.With(cl)
	return c
}
