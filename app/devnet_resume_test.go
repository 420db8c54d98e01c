package app

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/devnet"
)

// A restarted serve --all mines its devnet up to the block ingest last
// committed (the cursor in Redis), so delivery goes on at once instead of
// waiting for the devnet to get there again.
func TestRestartedDevnetResumesAtIngestsCursor(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	cfg := config.Defaults()
	cfg.Redis.URL = testenv.RedisURL()
	cfg.Redis.Prefix = prefix
	cfg.DatabaseURL = testenv.PGURL(t)
	rt := &Runtime{Cfg: cfg, Log: zap.NewNop()}
	defer rt.Close()

	// What an earlier run left: ingest's cursor at block 25 of the same chain.
	earlier := devnet.NewModule(module.Deps{Config: cfg}, devnet.Options{})
	earlier.FastForward(25)
	b25, _ := earlier.Node().BlockByNumber(25)
	cursor := fmt.Sprintf("25:%s", strings.ToLower(b25.Hash.Hex()))
	if err := rdb.Do(context.Background(), rdb.B().Set().Key(rt.Keys().Chain(cfg.Devnet.ChainID, "cursor")).Value(cursor).Build()).Error(); err != nil {
		t.Fatal(err)
	}

	m := devnet.NewModule(module.Deps{Config: cfg}, devnet.Options{})
	resumeDevnet(context.Background(), rt, m)
	head := m.Node().Head()
	if head.Number != 25 || head.Hash != b25.Hash {
		t.Fatalf("devnet head %d %s after resuming, want block 25 %s (the cursor's)", head.Number, head.Hash, b25.Hash)
	}

	// No cursor (a first run): nothing is mined.
	fresh := devnet.NewModule(module.Deps{Config: cfg}, devnet.Options{})
	rt2 := &Runtime{Cfg: cfg, Log: zap.NewNop()}
	rt2.Cfg.Redis.Prefix = prefix + "other:"
	defer rt2.Close()
	resumeDevnet(context.Background(), rt2, fresh)
	if n := fresh.Node().Head().Number; n != 0 {
		t.Fatalf("devnet at block %d with no stored cursor, want 0", n)
	}

	// Redis lost its state, Postgres kept the durable cursor: the devnet
	// mines up to it, so ingest's resume from it finds the block.
	pool, err := rt2.Postgres(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chaincursor.New(pool).Advance(context.Background(), cfg.Devnet.ChainID, hook.Cursor{Number: 25, Hash: strings.ToLower(b25.Hash.Hex()), Set: true}); err != nil {
		t.Fatal(err)
	}
	afterLoss := devnet.NewModule(module.Deps{Config: cfg}, devnet.Options{})
	resumeDevnet(context.Background(), rt2, afterLoss)
	if n := afterLoss.Node().Head().Number; n != 25 {
		t.Fatalf("devnet at block %d with only the durable cursor at 25, want 25", n)
	}
}
