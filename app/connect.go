package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

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
