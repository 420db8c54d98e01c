package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/sleep"
)

// Module creates partitions ahead and drops expired ones every
// cfg.Interval, and purges what deleted endpoints left (purgeLoop). Any
// number may run (one per process of the role that runs it); advisory
// locks serialize them.
type Module struct {
	cfg  config.Retention
	pool *pgxpool.Pool
	log  *zap.Logger
	now  func() time.Time
}

// Options are the retention module's own settings beyond module.Deps; it
// has none today (its settings are d.Config.Retention).
type Options struct{}

// New returns the retention module on d.Pool.
func New(d module.Deps, _ Options) *Module {
	return &Module{cfg: d.Config.Retention, pool: d.Pool, log: d.Logger(), now: time.Now}
}

// Name implements the supervisor's Module.
func (m *Module) Name() string { return "retention" }

// Run works until ctx ends. A failed round (Postgres away, a lock timeout)
// is logged and retried next round: partitions are created ahead_days
// partitions (at least two) ahead, so a missed round costs nothing.
func (m *Module) Run(ctx context.Context) error {
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		m.purgeLoop(ctx)
	}()
	defer func() { <-purged }()
	for {
		if err := m.Round(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("partition maintenance failed; retrying next round", zap.Error(err), zap.Duration("interval", m.cfg.Interval))
		}
		if !sleep.For(ctx, m.cfg.Interval) {
			return nil
		}
	}
}

// Round creates the partitions ahead and drops the expired ones, once.
func (m *Module) Round(ctx context.Context) error {
	now := m.now()
	created, err := Ensure(ctx, m.pool, now, LayoutOf(m.cfg))
	if err != nil {
		return err
	}
	if len(created) > 0 {
		m.log.Info("created partitions ahead", zap.Strings("partitions", created))
	}
	h, err := HorizonsAt(ctx, m.pool, m.cfg, now)
	if err != nil {
		return err
	}
	dropped, err := Drop(ctx, m.pool, h)
	if err != nil {
		return err
	}
	if len(dropped.Names) > 0 {
		m.log.Info("dropped partitions past retention", zap.Strings("partitions", dropped.Names),
			zap.Time("messages_before", h.Messages), zap.Time("attempts_before", h.Attempts), zap.Time("audit_before", h.Audit))
	}
	for name, n := range dropped.Moved {
		m.log.Info("moved messages still in flight out of a partition past retention into messages_default", zap.String("partition", name), zap.Int("in_flight", n))
	}
	for name, n := range dropped.Kept {
		m.log.Info("kept an attempts partition past retention: messages of it are still in flight", zap.String("partition", name), zap.Int("in_flight", n))
	}
	if dropped.Deleted > 0 {
		m.log.Info("deleted finished messages past retention from messages_default", zap.Int64("messages", dropped.Deleted))
	}
	return nil
}

// MessagesRetention is how long messages are physically kept: the
// configured retention or the longest plan override, whichever is longer.
func MessagesRetention(ctx context.Context, pool *pgxpool.Pool, cfg config.Retention) (time.Duration, error) {
	var days int
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(retention_days), 0) FROM plans`).Scan(&days); err != nil {
		return 0, fmt.Errorf("longest plan retention: %w", err)
	}
	return max(cfg.Messages, time.Duration(days)*day), nil
}

// HorizonsAt computes the drop horizons at now.
func HorizonsAt(ctx context.Context, pool *pgxpool.Pool, cfg config.Retention, now time.Time) (Horizons, error) {
	keep, err := MessagesRetention(ctx, pool, cfg)
	if err != nil {
		return Horizons{}, err
	}
	attempts := keep
	if cfg.Attempts != 0 {
		attempts = min(cfg.Attempts, keep)
	}
	return Horizons{
		Messages: now.Add(-keep),
		Attempts: now.Add(-attempts),
		Audit:    now.Add(-cfg.Audit),
	}, nil
}

// SetClock replaces the module's clock (tests run rounds days ahead).
func (m *Module) SetClock(now func() time.Time) { m.now = now }
