package bench

// Keeping a run apart from real data: the random Redis prefix and chain
// id it runs under, and deleting what it made when it ends.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randUint(max int64) uint64 {
	n, err := rand.Int(rand.Reader, big.NewInt(max))
	if err != nil {
		return uint64(time.Now().UnixNano() % max)
	}
	return n.Uint64()
}

// cleanup deletes the run's application (cascading to endpoints, messages,
// attempts, holds, usage), process's head row of the run's chain and every
// Redis key under the run's prefix.
func cleanup(ctx context.Context, d Deps, keys hook.Keys, appID string, chainID uint64) error {
	var errs []error
	if appID != "" {
		if err := tenant.New(d.Pool).DeleteApplication(ctx, hook.Operator, appID); err != nil {
			errs = append(errs, fmt.Errorf("delete application %s: %w", appID, err))
		}
	}
	if _, err := d.Pool.Exec(ctx, `DELETE FROM process_heads WHERE chain_id = $1`, int64(chainID)); err != nil {
		errs = append(errs, fmt.Errorf("delete process head of chain %d: %w", chainID, err))
	}
	if err := deleteKeys(ctx, d.Redis, keys.Prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func deleteKeys(ctx context.Context, rdb rueidis.Client, prefix string) error {
	var cursor uint64
	for {
		e, err := rdb.Do(ctx, rdb.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return fmt.Errorf("scan %s*: %w", prefix, err)
		}
		for _, k := range e.Elements {
			if err := rdb.Do(ctx, rdb.B().Del().Key(k).Build()).Error(); err != nil {
				return fmt.Errorf("delete %s: %w", k, err)
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return nil
		}
	}
}
