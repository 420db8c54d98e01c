package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
)

func moduleNames() []string {
	names := make([]string, len(moduleSpecs))
	for i, s := range moduleSpecs {
		names[i] = s.name
	}
	return names
}

func newServeCmd(rt *Runtime) *cobra.Command {
	var all bool
	var modules []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the pipeline: every module (--all) or a subset (--modules)",
		Long: fmt.Sprintf(`Run modules of the pipeline in one process, plus /healthz and /readyz on
ETHHOOK_HTTP_ADDR and /metrics on ETHHOOK_METRICS_ADDR, else METRICS_PORT
(on ETHHOOK_HTTP_ADDR's host when that is loopback, else every interface).

Modules in this binary, in start order: %s.
With --all and no chain configured, the built-in devnet runs as the only chain.
serve refuses to start while database migrations are pending.
The Go runtime's soft memory limit is GOMEMLIMIT when set (off disables it),
else 90%% of the container's (cgroup) memory limit when there is one.
`, strings.Join(moduleNames(), ", ")) + envHelp("http_addr", "metrics_port", "metrics_addr", "database_url", "redis.", "shutdown_grace", "log."),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && len(modules) > 0 {
				return errors.New("--all and --modules exclude each other")
			}
			if len(modules) == 0 {
				modules = moduleNames()
				if len(rt.Cfg.Chains) > 0 {
					modules = slices.DeleteFunc(modules, func(m string) bool { return m == "devnet" })
				}
			}
			return runModules(cmd.Context(), rt, modules, runOptions{})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "run every module (the default when --modules is not given)")
	cmd.Flags().StringSliceVar(&modules, "modules", nil, "comma-separated modules to run: "+strings.Join(moduleNames(), ","))
	return cmd
}

func newIngestCmd(rt *Runtime) *cobra.Command {
	var chains []string
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Run only the ingestor role (one goroutine tree per chain)",
		Long: `Run only the ingest module: watch chains over WebSocket JSON-RPC and publish
their logs to the Redis events streams. Several ingest processes may run for
the same chain: one holds the chain's lease and writes, the others stand by.

Chains come from ETHEREUM_WS_URL, ARBITRUM_WS_URL, OPTIMISM_WS_URL,
BASE_WS_URL (comma-separated URLs for failover) and the YAML chains: list.
` + envHelp("ingest.", "redis.", "dedup_ttl_seconds", "metrics_port", "metrics_addr", "http_addr"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModules(cmd.Context(), rt, []string{"ingest"}, runOptions{chains: chains})
		},
	}
	cmd.Flags().StringSliceVar(&chains, "chains", nil, "comma-separated chain names to ingest (default: every configured chain)")
	return cmd
}

func newDeliverCmd(rt *Runtime) *cobra.Command {
	return &cobra.Command{
		Use:   "deliver",
		Short: "Run only the delivery workers",
		Long: `Run only the deliver module: send queued webhooks, retry on schedule, enforce
rate limits and record every attempt. Run as many as you need.
` + envHelp("delivery.", "secret_key", "database_url", "redis.", "metrics_port", "metrics_addr", "http_addr"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModules(cmd.Context(), rt, []string{"deliver"}, runOptions{})
		},
	}
}

// runModules builds the named modules and supervises them until the
// command's context ends (SIGINT/SIGTERM) or one fails.
func runModules(ctx context.Context, rt *Runtime, names []string, o runOptions) error {
	var specs []moduleSpec
	for _, n := range names {
		i := slices.IndexFunc(moduleSpecs, func(s moduleSpec) bool { return s.name == n })
		if i < 0 {
			return fmt.Errorf("unknown module %q; this binary has: %s", n, strings.Join(moduleNames(), ", "))
		}
		specs = append(specs, moduleSpecs[i])
	}
	// Every role that writes messages, attempts or audit rows also runs
	// retention: without it the partitions created ahead run out after
	// retention.ahead_days. Several processes running it is safe (it
	// serializes on an advisory lock) and cheap (one round an interval).
	writes := func(s moduleSpec) bool { return s.name == "process" || s.name == "deliver" || s.name == "admin" }
	if slices.ContainsFunc(specs, writes) && !slices.ContainsFunc(specs, func(s moduleSpec) bool { return s.name == "retention" }) {
		specs = append(specs, moduleSpecs[slices.IndexFunc(moduleSpecs, func(s moduleSpec) bool { return s.name == "retention" })])
	}
	// Keep pipeline order whatever order the user named them in.
	slices.SortStableFunc(specs, func(a, b moduleSpec) int {
		return slices.IndexFunc(moduleSpecs, func(s moduleSpec) bool { return s.name == a.name }) -
			slices.IndexFunc(moduleSpecs, func(s moduleSpec) bool { return s.name == b.name })
	})
	if slices.ContainsFunc(specs, func(s moduleSpec) bool { return s.name == "devnet" }) && len(rt.Cfg.Chains) == 0 {
		rt.Cfg = rt.Cfg.WithDevnet()
		rt.Log.Info("no chain configured: running on the built-in devnet", zap.Uint64("chain_id", rt.Cfg.Devnet.ChainID), zap.String("addr", rt.Cfg.Devnet.Addr))
	}
	if slices.ContainsFunc(specs, func(s moduleSpec) bool { return s.needsPG }) {
		if err := refusePendingMigrations(ctx, rt); err != nil {
			return err
		}
	}

	if wantsDemo(rt, specs) {
		rt.Cfg.Delivery = allowDemoReceiver(rt.Cfg)
	}
	applyMemoryLimit(rt.Log)
	sup := &Supervisor{Log: rt.Log, Grace: rt.Cfg.ShutdownGrace}
	var built []Module
	var handler http.Handler
	for _, s := range specs {
		m, err := s.build(ctx, rt, o)
		if err != nil {
			return fmt.Errorf("module %s: %w", s.name, err)
		}
		if h, ok := m.(handlerModule); ok {
			handler = h.Handler()
		}
		built = append(built, m)
	}
	// The modules opened what they use; a Redis that may evict their keys
	// loses events without an error, so say so at start.
	if rdb := rt.openedRedis(); rdb != nil {
		warnIfRedisEvicts(ctx, rdb, rt.Log)
	}
	// The health server starts first and stops last, so /readyz reports
	// every module while it starts and drains.
	sup.Add(&httpServer{name: "http", addr: rt.Cfg.HTTPAddr, handler: healthHandler(sup, handler), limits: rt.Cfg.Admin, log: logFor(rt, "http")})
	if addr := rt.Cfg.MetricsListenAddr(); addr != "" {
		sup.Add(metricsServer(addr, rt.Registry, rt.Cfg.Admin, rt.Log))
	}
	for _, m := range built {
		sup.Add(m)
	}
	if wantsDemo(rt, specs) {
		sup.Add(&demo{rt: rt, log: logFor(rt, "demo")})
	}
	rt.Log.Info("ethhook starting", zap.String("version", Version), zap.Strings("modules", sup.Names()))
	return sup.Run(ctx)
}

// wantsDemo says whether to seed the demo endpoint and its receiver: on the
// built-in devnet, when the whole pipeline runs in this process.
func wantsDemo(rt *Runtime, specs []moduleSpec) bool {
	if rt.Cfg.Devnet.DemoAddr == "" {
		return false
	}
	has := map[string]bool{}
	for _, s := range specs {
		has[s.name] = true
	}
	return has["devnet"] && has["process"] && has["deliver"]
}

// allowDemoReceiver returns the delivery settings with the demo's built-in
// receiver allowed: the demo endpoint delivers to it on loopback, so exactly
// that address and port (devnet.demo_addr) is let through the SSRF guard,
// nothing else on the host (not the devnet's JSON-RPC, not /metrics).
func allowDemoReceiver(cfg config.Config) config.Delivery {
	d := cfg.Delivery
	d.AllowCIDRs = slices.Clone(d.AllowCIDRs)
	for _, ap := range cfg.Devnet.DemoReceiver() {
		d.AllowCIDRs = append(d.AllowCIDRs, ap.String())
	}
	return d
}

// refusePendingMigrations stops serve when the schema is behind the binary.
func refusePendingMigrations(ctx context.Context, rt *Runtime) error {
	m, err := openMigrator(ctx, rt)
	if err != nil {
		return err
	}
	defer m.Close()
	pending, err := m.Pending(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		names := make([]string, len(pending))
		for i, p := range pending {
			names[i] = p.Name
		}
		return fmt.Errorf("database has %d pending migration(s): %s; run `ethhook migrate up` first", len(pending), strings.Join(names, ", "))
	}
	return nil
}
