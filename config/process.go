package config

import (
	"errors"
	"fmt"
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
	var errs []error
	if c.ClaimIdle < time.Second {
		errs = append(errs, fmt.Errorf("process.claim_idle: must be at least 1s, got %s", c.ClaimIdle))
	}
	if c.ReadCount < 1 || c.ReadCount > 10000 {
		errs = append(errs, fmt.Errorf("process.read_count: must be 1..10000, got %d", c.ReadCount))
	}
	if c.Consumer == "" {
		errs = append(errs, fmt.Errorf("process.consumer (ETHHOOK_PROCESS_CONSUMER): must not be empty"))
	}
	if c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("process.workers: must be 1..64, got %d", c.Workers))
	}
	if c.BlockTimeout < 10*time.Millisecond || c.BlockTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("process.block_timeout: must be 10ms..1m, got %s", c.BlockTimeout))
	}
	if c.RefreshInterval < time.Second {
		errs = append(errs, fmt.Errorf("process.refresh_interval: must be at least 1s, got %s", c.RefreshInterval))
	}
	if c.ReleaseInterval < 10*time.Millisecond || c.ReleaseInterval > time.Minute {
		errs = append(errs, fmt.Errorf("process.release_interval: must be 10ms..1m, got %s", c.ReleaseInterval))
	}
	if c.MaxQueuedJobs < 1000 {
		errs = append(errs, fmt.Errorf("process.max_queued_jobs (ETHHOOK_PROCESS_MAX_QUEUED_JOBS): must be at least 1000, got %d", c.MaxQueuedJobs))
	}
	if c.PoisonTries < 1 || c.PoisonTries > 100 {
		errs = append(errs, fmt.Errorf("process.poison_tries (ETHHOOK_PROCESS_POISON_TRIES): must be 1..100, got %d", c.PoisonTries))
	}
	if c.HoldRetention < time.Minute {
		errs = append(errs, fmt.Errorf("process.hold_retention: must be at least 1m, got %s", c.HoldRetention))
	}
	return errors.Join(errs...)
}
