package config

import (
	"errors"
	"os"
	"time"
)

// Process configures the process module (owned by modules/process).
type Process struct {
	// ClaimIdle is how long an entry may sit unacknowledged with a consumer
	// before another process reclaims it (XAUTOCLAIM).
	ClaimIdle time.Duration `mapstructure:"claim_idle"`
	// ReadCount is how many stream entries one read takes.
	ReadCount int64 `mapstructure:"read_count"`
	// Consumer is this process's consumer name in the events streams'
	// consumer group; keep it stable across restarts so a restarted process
	// finishes its own unacknowledged entries at once (default: host name).
	Consumer string `mapstructure:"consumer"`
	// Workers is how many readers per chain stream run concurrently.
	Workers int `mapstructure:"workers"`
	// BlockTimeout is how long one stream read waits for new entries.
	BlockTimeout time.Duration `mapstructure:"block_timeout"`
	// RefreshInterval is how often the endpoint index is reloaded in full
	// (changes are applied at once on NOTIFY/PUBLISH besides).
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	// ReleaseInterval is how often held events (confirmations, batches)
	// are checked for release.
	ReleaseInterval time.Duration `mapstructure:"release_interval"`
	// HoldRetention is how long released holds and removal tombstones are
	// kept (they answer late removals and replays); never longer than
	// retention.messages, which process caps it at.
	HoldRetention time.Duration `mapstructure:"hold_retention"`
	// MaxQueuedJobs stops reading events while the delivery jobs stream
	// holds this many jobs deliver has not finished: the backlog then waits
	// in the events stream (and ingest holds back after it) instead of
	// growing Redis without bound (ETHHOOK_PROCESS_MAX_QUEUED_JOBS).
	MaxQueuedJobs int64 `mapstructure:"max_queued_jobs"`
	// PoisonTries is how many times process tries a stream entry that
	// fails on its own (a data error, not an outage) before it moves the
	// entry to the chain's dead-letter stream, so it no longer holds later
	// entries and confirmations back (ETHHOOK_PROCESS_POISON_TRIES).
	PoisonTries int `mapstructure:"poison_tries"`
}

// DefaultProcess holds the process defaults.
func DefaultProcess() Process {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "process"
	}
	return Process{
		ClaimIdle: 30 * time.Second, ReadCount: 500, Consumer: host, Workers: 4,
		BlockTimeout: time.Second, RefreshInterval: time.Minute, ReleaseInterval: 200 * time.Millisecond,
		HoldRetention: 24 * time.Hour, MaxQueuedJobs: 1_000_000, PoisonTries: 5,
	}
}

// Validate checks the process settings.
func (c Process) Validate() error {
	return errors.Join(
		atLeast("process.claim_idle", c.ClaimIdle, time.Second),
		within("process.read_count", c.ReadCount, 1, 10000),
		failIf(c.Consumer == "", "process.consumer (ETHHOOK_PROCESS_CONSUMER): must not be empty"),
		within("process.workers", c.Workers, 1, 64),
		within("process.block_timeout", c.BlockTimeout, 10*time.Millisecond, time.Minute),
		atLeast("process.refresh_interval", c.RefreshInterval, time.Second),
		within("process.release_interval", c.ReleaseInterval, 10*time.Millisecond, time.Minute),
		atLeast("process.max_queued_jobs (ETHHOOK_PROCESS_MAX_QUEUED_JOBS)", c.MaxQueuedJobs, 1000),
		within("process.poison_tries (ETHHOOK_PROCESS_POISON_TRIES)", c.PoisonTries, 1, 100),
		atLeast("process.hold_retention", c.HoldRetention, time.Minute),
	)
}
