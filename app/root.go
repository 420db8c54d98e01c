// Package app is the ethhook command line: cobra commands, the lifecycle
// supervisor, and the wiring of config, logs, metrics, Postgres and Redis
// into the modules that a role runs.
package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
)

type flagKey struct {
	name, key, usage string
}

// globalFlags are the root's persistent flags and the config keys they set.
var globalFlags = []flagKey{
	{"database-url", "database_url", "Postgres URL"},
	{"redis-url", "redis.url", "Redis URL"},
	{"redis-prefix", "redis.prefix", "prefix of every Redis key"},
	{"log-level", "log.level", "debug, info, warn or error"},
	{"log-format", "log.format", "json or console"},
}

// serverFlags are the flags of the long-running roles only (serve, ingest,
// deliver, devnet, bench), so `ethhook app create --help` does not list
// listen addresses it never opens.
var serverFlags = []flagKey{
	{"http-addr", "http_addr", "address of the admin API, web UI, /healthz and /readyz"},
	{"metrics-port", "metrics_port", "port of /metrics (0 disables); on http_addr's host when that is loopback, else every interface"},
	{"metrics-addr", "metrics_addr", "address of /metrics (host:port), instead of --metrics-port"},
	{"shutdown-grace", "shutdown_grace", "how long a stop may drain before the process gives up"},
}

// addServerFlags gives a long-running command the serverFlags.
func addServerFlags(cmd *cobra.Command) *cobra.Command {
	defaults := config.Keys()
	for _, f := range serverFlags {
		usage := fmt.Sprintf("%s (env %s)", f.usage, strings.Join(config.EnvNames(f.key), ", "))
		cmd.Flags().String(f.name, fmt.Sprint(defaults[f.key]), usage)
	}
	return cmd
}

// groupAnnotation marks a command that only holds subcommands (see strictUsage).
const groupAnnotation = "ethhook/group"

// noConfig marks commands that run without loading the configuration.
const noConfig = "ethhook/no-config"

// Execute runs the command line and exits with its status: 1 when a
// command failed, 2 when it was called wrongly.
func Execute() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if cmd, err := NewRoot().ExecuteContextC(ctx); err != nil {
		code := report(os.Stderr, cmd, err)
		stop()
		os.Exit(code)
	}
	stop()
}

// NewRoot builds the command tree (exported for tests).
func NewRoot() *cobra.Command {
	rt := &Runtime{}
	var configFile string
	root := &cobra.Command{
		Use:   "ethhook",
		Short: "EVM contract events as signed, retried HTTPS webhooks",
		Long: `EthHook watches EVM chains over WebSocket JSON-RPC, turns contract event logs
into a Redis stream, matches them against subscriptions and delivers them as
signed webhooks with retries, rate limits and an audit log in Postgres.

Settings come from flags, then environment variables, then the YAML file
(--config, else ./ethhook.yaml when present), then defaults. Run
'ethhook config env' for every setting with its environment variable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Annotations[groupAnnotation] == "true" {
				return nil // it only prints its help
			}
			for c := cmd; c != nil; c = c.Parent() {
				if c.Annotations[noConfig] == "true" {
					return nil
				}
			}
			keys := map[string]string{}
			for _, f := range append(globalFlags, serverFlags...) {
				keys[f.name] = f.key
			}
			cfg, err := config.Load(config.Options{File: configFile, Flags: cmd.Flags(), FlagKeys: keys})
			if err != nil {
				return err
			}
			rt.Cfg = cfg
			// Message ids take their fallback time from the partition width
			// (hook.MessageID); Load has validated it.
			if w := cfg.Retention.PartitionWidth; w > 0 && (24*time.Hour)%w == 0 {
				hook.SetPartitionWidth(w)
			}
			if rt.Log, err = newLogger(cfg.Log); err != nil {
				return err
			}
			for _, w := range cfg.Warnings() {
				rt.Log.Warn("INSECURE: " + w)
			}
			for _, w := range config.EnvWarnings(os.Environ()) {
				rt.Log.Warn(w)
			}
			rt.Registry = newRegistry()
			return nil
		},
		PersistentPostRun: func(cmd *cobra.Command, args []string) { rt.Close() },
	}
	root.PersistentFlags().StringVar(&configFile, "config", "", "YAML config file (default ./ethhook.yaml if present)")
	defaults := config.Keys()
	for _, f := range globalFlags {
		usage := fmt.Sprintf("%s (env %s)", f.usage, strings.Join(config.EnvNames(f.key), ", "))
		root.PersistentFlags().String(f.name, fmt.Sprint(defaults[f.key]), usage)
	}
	root.AddCommand(
		addServerFlags(newServeCmd(rt)),
		addServerFlags(newIngestCmd(rt)),
		addServerFlags(newDeliverCmd(rt)),
		newMigrateCmd(rt),
		newConfigCmd(rt),
		newVersionCmd(),
	)
	root.AddCommand(extraCommands(rt)...)
	for _, c := range root.Commands() {
		if c.Name() == "devnet" || c.Name() == "bench" {
			addServerFlags(c)
		}
	}
	strictUsage(root)
	return root
}

// envHelp lists configuration keys with a prefix and their environment
// variables, for a command's help text.
func envHelp(prefixes ...string) string {
	var keys []string
	for k := range config.Keys() {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				keys = append(keys, k)
				break
			}
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\nEnvironment:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-45s %s\n", strings.Join(config.EnvNames(k), ", "), k)
	}
	return b.String()
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:         "version",
		Short:       "Print the version",
		Annotations: map[string]string{noConfig: "true"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON { // the labels of ethhook_build_info
				return printJSON(cmd.OutOrStdout(), map[string]string{"version": Version, "commit": Commit, "goversion": runtime.Version()})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "ethhook %s (commit %s)\n", Version, Commit)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// envVar is one row of `ethhook config env --json`.
type envVar struct {
	Key     string   `json:"key"`
	Env     []string `json:"env"`
	Default any      `json:"default"`
}

func newConfigCmd(rt *Runtime) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration as YAML (--json: JSON), secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rt.Cfg.Masked())
			}
			out, err := rt.Cfg.MaskedYAML()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:         "env",
		Short:       "List every setting with its environment variables and default",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{noConfig: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			keys := config.Keys()
			names := make([]string, 0, len(keys))
			for k := range keys {
				names = append(names, k)
			}
			sort.Strings(names)
			w := cmd.OutOrStdout()
			if asJSON {
				rows := make([]envVar, 0, len(names))
				for _, k := range names {
					rows = append(rows, envVar{Key: k, Env: config.EnvNames(k), Default: keys[k]})
				}
				return printJSON(w, rows)
			}
			for _, k := range names {
				fmt.Fprintf(w, "%-40s %-50s default %v\n", k, strings.Join(config.EnvNames(k), ", "), keys[k])
			}
			fmt.Fprintln(w, "chains (YAML list)                       ETHEREUM_WS_URL, ARBITRUM_WS_URL, OPTIMISM_WS_URL, BASE_WS_URL, SEPOLIA_WS_URL, ... (comma-separated URLs)")
			fmt.Fprintln(w, "redis.url (legacy)                       REDIS_HOST, REDIS_PORT, REDIS_PASSWORD")
			return nil
		},
	})
	return cmd
}

// logFor gives a module its logger, tagged with its name.
func logFor(rt *Runtime, module string) *zap.Logger {
	return rt.Log.With(zap.String("module", module))
}
