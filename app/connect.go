package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/pgpool"
)

func openPostgres(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	pc, err := pgpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("database_url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres at %s: %w", config.RedactURL(dbURL), err)
	}
	return pool, nil
}

// redisConnBuffer is the read and the write buffer of each Redis connection.
const redisConnBuffer = 64 << 10

func openRedis(redisURL string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	// Client-side caching is not used: streams and queues are read fresh.
	opt.DisableCache = true
	// Every connection (the shared pipeline and one per blocking reader:
	// XREADGROUP BLOCK, SUBSCRIBE) gets a read and a write buffer of this
	// size; rueidis's default 512 KiB each held ~7 MB of live heap (~14 MB
	// of RSS at the GC's goal) in one serve --all process. Larger replies
	// and pipelines only take more read and write calls.
	if opt.ReadBufferEachConn == 0 {
		opt.ReadBufferEachConn = redisConnBuffer
	}
	if opt.WriteBufferEachConn == 0 {
		opt.WriteBufferEachConn = redisConnBuffer
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("connect to redis: %w", err)
	}
	return c, nil
}

// warnIfRedisEvicts logs a warning when Redis's maxmemory-policy lets it
// evict keys under memory pressure. EthHook's streams, delivery jobs,
// cursors and leases carry no TTL but are state, not cache: an evicted
// events stream loses its unread events without an error, an evicted dedup
// key (they have TTLs, so volatile-* policies evict them) sends a block's
// webhooks twice. Only noeviction keeps them (Redis then refuses writes when
// full, which ethhook handles like an outage). Managed Redis often ships
// another default (volatile-lru, allkeys-lru), as Sidekiq's and BullMQ's
// startup warnings point out. It reads INFO memory (CONFIG GET is often
// disabled on managed Redis) and says nothing when Redis does not answer:
// an outage is reported where it hurts.
func warnIfRedisEvicts(ctx context.Context, c rueidis.Client, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Do(ctx, c.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		return
	}
	if policy := infoField(info, "maxmemory_policy"); policy != "" && policy != "noeviction" {
		log.Warn("redis may evict ethhook's keys when its memory is full, losing events and delivery jobs without an error: set maxmemory-policy noeviction",
			zap.String("maxmemory_policy", policy), zap.String("maxmemory", infoField(info, "maxmemory_human")))
	}
}

// infoField is field's value in an INFO reply ("field:value" lines).
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), field+":"); ok {
			return v
		}
	}
	return ""
}
