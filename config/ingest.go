package config

import (
	"errors"
	"time"
)

// Ingest configures the ingest module (owned by modules/ingest).
type Ingest struct {
	// StreamMaxLen keeps each chain's events stream near this many entries,
	// never trimming one process has not acknowledged; ingest holds new
	// blocks back while that many wait unacknowledged.
	StreamMaxLen int64 `mapstructure:"stream_max_len"`
	// LeaseTTL is how long a chain's writer lease lives without renewal;
	// a standby takes over at most this long after the writer dies.
	LeaseTTL time.Duration `mapstructure:"lease_ttl"`
	// CallTimeout bounds one JSON-RPC call.
	CallTimeout time.Duration `mapstructure:"call_timeout"`
	// MaxLogRange is the default ranged eth_getLogs span for backfill.
	MaxLogRange uint64 `mapstructure:"max_log_range"`
	// MaxMessageBytes is the largest JSON-RPC message (WebSocket frame or
	// HTTP body) the client reads; a larger one is refused and counted.
	// Backfill sizes its ranged eth_getLogs requests to answers of about an
	// eighth of it (256 KiB..8 MiB), following the chain's log density.
	MaxMessageBytes int64 `mapstructure:"max_message_bytes"`
	// PingInterval is how often an idle WebSocket is pinged (keepalive).
	PingInterval time.Duration `mapstructure:"ping_interval"`
	// ReconnectMin and ReconnectMax bound the reconnect backoff (doubling,
	// with jitter).
	ReconnectMin time.Duration `mapstructure:"reconnect_min"`
	ReconnectMax time.Duration `mapstructure:"reconnect_max"`
	// HeadPollInterval is how long the ingestor waits for a newHeads
	// notification before asking the node for its head itself; 0 derives it
	// from the chain's block time (twice it, 1s..30s).
	HeadPollInterval time.Duration `mapstructure:"head_poll_interval"`
	// EmptyLogsRetries is how many times a block whose logsBloom is not
	// empty but whose eth_getLogs answer is [] is fetched again.
	EmptyLogsRetries int `mapstructure:"empty_logs_retries"`
	// NotificationQueueBytes bounds the newHeads notifications one
	// connection queues while ingest is busy with a call; beyond it the
	// oldest are dropped and counted (heads are hints: the next head or
	// poll backfills the gap).
	NotificationQueueBytes int64 `mapstructure:"notification_queue_bytes"`
	// MaxHeadJump is how far past the known head a head claim may be
	// followed at once; a longer jump (a catch-up after downtime, or a
	// lying node) is followed only once the node confirms it by a second
	// call and, when the chain has several URLs, another provider knows it.
	MaxHeadJump uint64 `mapstructure:"max_head_jump"`
	// ChainIDCheckInterval is how often a live session asks its node(s)
	// for eth_chainId again (also asked at every connect, before a reorg
	// of more than two blocks and before a long head jump is followed).
	ChainIDCheckInterval time.Duration `mapstructure:"chain_id_check_interval"`
	// FinalityPollInterval is how often the node's "safe" and "finalized"
	// blocks are asked for (endpoints with finality safe or finalized wait
	// for them); 0 takes the head poll interval.
	FinalityPollInterval time.Duration `mapstructure:"finality_poll_interval"`
}

// DefaultIngest holds the ingest defaults.
func DefaultIngest() Ingest {
	return Ingest{
		StreamMaxLen:     1_000_000,
		LeaseTTL:         3 * time.Second,
		CallTimeout:      10 * time.Second,
		MaxLogRange:      1000,
		MaxMessageBytes:  32 << 20,
		PingInterval:     15 * time.Second,
		ReconnectMin:     time.Second,
		ReconnectMax:     60 * time.Second,
		EmptyLogsRetries: 6,

		NotificationQueueBytes: 4 << 20,
		MaxHeadJump:            10_000,
		ChainIDCheckInterval:   5 * time.Minute,
	}
}

// Validate checks the ingest settings.
func (c Ingest) Validate() error {
	return errors.Join(
		atLeast("ingest.stream_max_len", c.StreamMaxLen, 1000),
		atLeast("ingest.lease_ttl", c.LeaseTTL, 500*time.Millisecond),
		positive("ingest.call_timeout", c.CallTimeout),
		failIf(c.MaxLogRange < 1, "ingest.max_log_range: must be at least 1"),
		failIf(c.MaxMessageBytes < 1<<20, "ingest.max_message_bytes: must be at least 1048576 (1 MiB), got %d", c.MaxMessageBytes),
		positive("ingest.ping_interval", c.PingInterval),
		positive("ingest.reconnect_min", c.ReconnectMin),
		failIf(c.ReconnectMax < c.ReconnectMin, "ingest.reconnect_max: must be at least ingest.reconnect_min (%s), got %s", c.ReconnectMin, c.ReconnectMax),
		notNegative("ingest.head_poll_interval", c.HeadPollInterval),
		notNegative("ingest.empty_logs_retries", c.EmptyLogsRetries),
		failIf(c.NotificationQueueBytes < 64<<10, "ingest.notification_queue_bytes: must be at least 65536 (64 KiB), got %d", c.NotificationQueueBytes),
		positive("ingest.chain_id_check_interval", c.ChainIDCheckInterval),
		notNegative("ingest.finality_poll_interval", c.FinalityPollInterval),
		failIf(c.MaxHeadJump < 1, "ingest.max_head_jump: must be at least 1"),
	)
}
