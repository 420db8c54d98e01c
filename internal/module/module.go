// Package module holds what every module constructor takes: the loaded
// config and the connections, logger and metrics registry the process
// shares. Every module's constructor is New(d module.Deps, o Options), its
// own settings in Options; the app builds one Deps and passes it to each,
// with the logger already tagged with the module's name.
package module

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/seal"
)

// Deps is what the modules share. A module checks for the fields it needs
// (Postgres, Redis, the box) and fails in New without them.
type Deps struct {
	// Config is the whole loaded config; a module reads its own section.
	Config config.Config
	Pool   *pgxpool.Pool
	Redis  rueidis.Client
	// Box seals and opens endpoint signing secrets (ETHHOOK_SECRET_KEY).
	Box *seal.Box
	// Log is the module's logger. The caller tags it (module=<name>, see
	// app's logFor); modules add no module field of their own. nil logs
	// nothing.
	Log *zap.Logger
	// Registerer takes the module's metrics; nil registers them on a
	// registry of their own (not exported).
	Registerer prometheus.Registerer
	// Version is the binary's version (the deliver User-Agent); "" is "dev".
	Version string
}

// Keys is the Redis key layout under the configured prefix.
func (d Deps) Keys() hook.Keys { return hook.Keys{Prefix: d.Config.Redis.Prefix} }

// Logger is Log, or a logger that discards everything when Log is nil.
func (d Deps) Logger() *zap.Logger {
	if d.Log == nil {
		return zap.NewNop()
	}
	return d.Log
}

// Metrics is Registerer, or a new registry of its own when it is nil.
func (d Deps) Metrics() prometheus.Registerer {
	if d.Registerer == nil {
		return prometheus.NewRegistry()
	}
	return d.Registerer
}

// AppVersion is Version, or "dev" when it is empty.
func (d Deps) AppVersion() string {
	if d.Version == "" {
		return "dev"
	}
	return d.Version
}
