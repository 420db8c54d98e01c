package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/seal"
)

// Runtime is what every command shares: the loaded config and lazily opened
// connections. A command's RunE calls rt.Load(cmd) first; the connections are
// opened on first use and closed by rt.Close when the command returns.
type Runtime struct {
	Cfg      config.Config
	Log      *zap.Logger
	Registry *prometheus.Registry

	mu    sync.Mutex
	pool  *pgxpool.Pool
	redis rueidis.Client
	box   *seal.Box
}

// Postgres returns the shared pool, opening it on first use.
func (rt *Runtime) Postgres(ctx context.Context) (*pgxpool.Pool, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.pool != nil {
		return rt.pool, nil
	}
	pool, err := openPostgres(ctx, rt.Cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	rt.pool = pool
	return pool, nil
}

// Redis returns the shared client, opening it on first use.
func (rt *Runtime) Redis() (rueidis.Client, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.redis != nil {
		return rt.redis, nil
	}
	c, err := openRedis(rt.Cfg.Redis.URL)
	if err != nil {
		return nil, err
	}
	rt.redis = c
	return c, nil
}

// openedRedis is the shared client if something opened it, else nil.
func (rt *Runtime) openedRedis() rueidis.Client {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.redis
}

// Keys is the Redis key layout under the configured prefix.
func (rt *Runtime) Keys() hook.Keys { return hook.Keys{Prefix: rt.Cfg.Redis.Prefix} }

// SecretBox seals endpoint secrets with ETHHOOK_SECRET_KEY and opens them
// with it or ETHHOOK_SECRET_KEY_PREVIOUS (during a key rotation); it fails
// when no key is configured.
func (rt *Runtime) SecretBox() (*seal.Box, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.box != nil {
		return rt.box, nil
	}
	if rt.Cfg.SecretKey == "" {
		return nil, fmt.Errorf("secret_key: %w", seal.ErrNoKey)
	}
	key, err := config.DecodeKey(rt.Cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("secret_key (ETHHOOK_SECRET_KEY): %w", err)
	}
	var previous [][]byte
	if rt.Cfg.SecretKeyPrevious != "" {
		prev, err := config.DecodeKey(rt.Cfg.SecretKeyPrevious)
		if err != nil {
			return nil, fmt.Errorf("secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS): %w", err)
		}
		previous = append(previous, prev)
	}
	box, err := seal.New(key, previous...)
	if err != nil {
		return nil, err
	}
	rt.box = box
	return box, nil
}

// pgRedis opens the Postgres pool and the Redis client.
func (rt *Runtime) pgRedis(ctx context.Context) (*pgxpool.Pool, rueidis.Client, error) {
	pool, err := rt.Postgres(ctx)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := rt.Redis()
	if err != nil {
		return nil, nil, err
	}
	return pool, rdb, nil
}

// deps is what the module named name is built on: the config, the
// registry, the version and the logger tagged module=<name> (logFor). The
// build functions add the connections the module needs (rt.Postgres,
// rt.Redis, rt.storage), so a role opens only those.
func (rt *Runtime) deps(name string) module.Deps {
	return module.Deps{Config: rt.Cfg, Log: logFor(rt, name), Registerer: rt.Registry, Version: Version}
}

// storage opens what the Postgres-backed modules share: the pool, the Redis
// client and the secret box (ETHHOOK_SECRET_KEY is required by them).
func (rt *Runtime) storage(ctx context.Context) (*pgxpool.Pool, rueidis.Client, *seal.Box, error) {
	pool, rdb, err := rt.pgRedis(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	box, err := rt.SecretBox()
	if err != nil {
		return nil, nil, nil, err
	}
	return pool, rdb, box, nil
}

// Close releases whatever was opened.
func (rt *Runtime) Close() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.pool != nil {
		rt.pool.Close()
		rt.pool = nil
	}
	if rt.redis != nil {
		rt.redis.Close()
		rt.redis = nil
	}
	if rt.Log != nil {
		_ = rt.Log.Sync()
	}
}
