package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/chainstatus"
	"github.com/ethhook/ethhook/modules/admin"
	"github.com/ethhook/ethhook/modules/deliver"
	"github.com/ethhook/ethhook/modules/devnet"
	"github.com/ethhook/ethhook/modules/ingest"
	"github.com/ethhook/ethhook/modules/process"
	"github.com/ethhook/ethhook/retention"
)

// moduleSpec is a module the binary can run; serve --all runs every one, in
// this order (the direction data flows), and stops them in reverse.
type moduleSpec struct {
	name    string
	needsPG bool // uses Postgres, so serve checks the schema first
	build   func(ctx context.Context, rt *Runtime, o runOptions) (Module, error)
}

// maxDevnetFastForward bounds the blocks mined at start to reach a stored
// cursor (about 10,000 a second with the default 20 logs a block).
const maxDevnetFastForward = 200_000

// resumeDevnet mines the embedded devnet up to the block ingest last
// committed for it (its cursor in Redis, or the durable one in Postgres when
// Redis lost its state), so a restarted `serve --all` goes on delivering at
// once. With neither it does nothing.
func resumeDevnet(ctx context.Context, rt *Runtime, m *devnet.Module) {
	var n uint64
	if rdb, err := rt.Redis(); err == nil {
		if c, err := chainstatus.New(rdb, rt.Keys()).Cursor(ctx, rt.Cfg.Devnet.ChainID); err == nil {
			n = c.Number // 0 when unset
		}
	}
	if pool, err := rt.Postgres(ctx); err == nil {
		if c, err := chaincursor.New(pool).Load(ctx, rt.Cfg.Devnet.ChainID); err == nil && c.Set {
			n = max(n, c.Number)
		}
	}
	if n == 0 {
		return
	}
	log := logFor(rt, "devnet")
	if n > maxDevnetFastForward {
		log.Warn("ingest's stored cursor for the devnet is too far ahead to mine up to at start; ingest waits until the devnet gets there (to start over, delete the chain's Redis keys and its chain_cursors row)",
			zap.Uint64("cursor", n), zap.Int("max", maxDevnetFastForward))
		return
	}
	start := time.Now()
	if k := m.FastForward(n); k > 0 {
		log.Info("devnet mined up to ingest's stored cursor, so ingest goes on where it stopped",
			zap.Uint64("block", n), zap.Int("mined", k), zap.Duration("took", time.Since(start)))
	}
}

// runOptions are the choices of the command that runs the modules.
type runOptions struct {
	chains []string // ingest: only these chain names (empty: all configured)
}

// moduleSpecs lists the modules compiled into this binary.
var moduleSpecs = []moduleSpec{
	{name: "devnet", build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		m := devnet.NewModule(rt.deps("devnet"), devnet.Options{})
		resumeDevnet(ctx, rt, m)
		return m, nil
	}},
	// ingest needs Postgres for the durable chain cursors it resumes from
	// when Redis loses its state.
	{name: "ingest", needsPG: true, build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		chains, err := selectChains(rt.Cfg.Chains, o.chains)
		if err != nil {
			return nil, err
		}
		d := rt.deps("ingest")
		if d.Pool, d.Redis, err = rt.pgRedis(ctx); err != nil {
			return nil, err
		}
		// History: the endpoints created with from_block.
		return ingest.New(d, ingest.Options{Chains: chains, History: &ingest.HistoryOptions{}})
	}},
	{name: "process", needsPG: true, build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		d := rt.deps("process")
		var err error
		if d.Pool, d.Redis, err = rt.pgRedis(ctx); err != nil {
			return nil, err
		}
		return process.New(d, process.Options{})
	}},
	{name: "deliver", needsPG: true, build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		d := rt.deps("deliver")
		var err error
		if d.Pool, d.Redis, d.Box, err = rt.storage(ctx); err != nil {
			return nil, err
		}
		return deliver.New(d, deliver.Options{})
	}},
	{name: "admin", needsPG: true, build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		d := rt.deps("admin")
		var err error
		if d.Pool, d.Redis, d.Box, err = rt.storage(ctx); err != nil {
			return nil, err
		}
		am, err := admin.New(d, admin.Options{})
		if err != nil {
			return nil, err
		}
		// The web UI shares the admin module's router, auth and tenancy.
		if err := mountUI(rt, am, d.Pool, d.Redis); err != nil {
			return nil, err
		}
		return am, nil
	}},
	// retention creates the traffic tables' partitions ahead and drops
	// those past retention; safe in every process (an advisory lock).
	{name: "retention", needsPG: true, build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		d := rt.deps("retention")
		var err error
		if d.Pool, err = rt.Postgres(ctx); err != nil {
			return nil, err
		}
		return retention.New(d, retention.Options{}), nil
	}},
}

// selectChains keeps the configured chains named (or numbered) in names;
// no names means every configured chain.
func selectChains(all []config.Chain, names []string) ([]config.Chain, error) {
	if len(all) == 0 {
		return nil, errors.New("no chain configured: set ETHEREUM_WS_URL (or ARBITRUM_WS_URL, OPTIMISM_WS_URL, BASE_WS_URL) or a chains: list in the config file")
	}
	if len(names) == 0 {
		return all, nil
	}
	var out []config.Chain
	for _, n := range names {
		i := slices.IndexFunc(all, func(c config.Chain) bool { return c.Name == n || strconv.FormatUint(c.ID, 10) == n })
		if i < 0 {
			known := make([]string, len(all))
			for j, c := range all {
				known[j] = c.Name
			}
			return nil, fmt.Errorf("--chains: %q is not a configured chain; configured: %s", n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// handlerModule is a module that serves HTTP routes on ETHHOOK_HTTP_ADDR
// (the admin API and web UI) next to /healthz and /readyz.
type handlerModule interface {
	Handler() http.Handler
}

// extraCommands are the commands of the modules and tools.
func extraCommands(rt *Runtime) []*cobra.Command {
	return []*cobra.Command{
		newDevnetCmd(rt),
		newAppCmd(rt),
		newEndpointCmd(rt),
		newMessageCmd(rt),
		newUserCmd(rt),
		newListenCmd(rt),
		newBenchCmd(rt),
		newSecretsCmd(rt),
	}
}
