package chaincursor

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
)

// The history handover. An endpoint created with from_block gets blocks up
// to to_block from ingest's historian and every later block from process's
// live path. The live path must know the endpoint for every entry of a block
// after to_block, whether or not a process has heard of the endpoint yet
// (its NOTIFY may come late). So the handover is a point in the events
// stream, not a time:
//
//   - the historian, once the endpoint is committed in Postgres, runs
//     Handover: one script bumps the chain's endpoint generation
//     (`<prefix>{<chain>}:epgen`) and reads the committed cursor, which
//     becomes to_block. Every events entry added after it (ingest commits
//     entries atomically with the cursor) is of a block after to_block;
//   - process reads the generation after every read of the events stream
//     (Generation) and, when it differs from the one its endpoint index was
//     loaded at, reloads the index from Postgres before matching the read.
//     An entry added after the script is read after it, so its read sees the
//     new generation and is matched against an index that has the endpoint.
//
// Blocks both paths cover are harmless (messages are unique per endpoint,
// event and type). A generation lost with Redis's state only makes
// processes reload once more (they compare for inequality).

// GenKey is the chain's endpoint generation.
func GenKey(k hook.Keys, chainID uint64) string { return k.Chain(chainID, "epgen") }

//go:embed handover.lua
var handoverLua string

var handoverScript = rueidis.NewLuaScript(handoverLua)

// Handover bumps the chain's endpoint generation and returns the committed
// cursor at that point ("" when the chain has none yet), atomically.
func Handover(ctx context.Context, rdb rueidis.Client, k hook.Keys, chainID uint64) (string, error) {
	c, err := handoverScript.Exec(ctx, rdb, []string{GenKey(k, chainID), k.Chain(chainID, "cursor")}, nil).ToString()
	if err != nil {
		return "", fmt.Errorf("hand history over on chain %d: %w", chainID, err)
	}
	return c, nil
}

// Generation reads the chain's endpoint generation ("" when unset).
func Generation(ctx context.Context, rdb rueidis.Client, k hook.Keys, chainID uint64) (string, error) {
	g, err := rdb.Do(ctx, rdb.B().Get().Key(GenKey(k, chainID)).Build()).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return "", fmt.Errorf("read endpoint generation of chain %d: %w", chainID, err)
	}
	return g, nil
}
