// Package app is the ethhook command line: cobra commands, the lifecycle
// supervisor, and the wiring of config, logs, metrics, Postgres and Redis
// into the modules that a role runs.
package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
)

// globalFlags are the root's persistent flags and the config keys they set.
var globalFlags = []struct {
	name, key, usage string
}{
	{"database-url", "database_url", "Postgres URL"},
	{"redis-url", "redis.url", "Redis URL"},
	{"redis-prefix", "redis.prefix", "prefix of every Redis key"},
	{"http-addr", "http_addr", "address of the admin API, web UI, /healthz and /readyz"},
	{"metrics-port", "metrics_port", "port of /metrics (0 disables); on http_addr's host when that is loopback, else every interface"},
	{"metrics-addr", "metrics_addr", "address of /metrics (host:port), instead of --metrics-port"},
	{"log-level", "log.level", "debug, info, warn or error"},
	{"log-format", "log.format", "json or console"},
	{"shutdown-grace", "shutdown_grace", "how long a stop may drain before the process gives up"},
}

// noConfig marks commands that run without loading the configuration.
const noConfig = "ethhook/no-config"

// Execute runs the command line and exits with its status.
func Execute() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := NewRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ethhook:", err)
		os.Exit(1)
	}
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
			for c := cmd; c != nil; c = c.Parent() {
				if c.Annotations[noConfig] == "true" {
					return nil
				}
			}
			keys := map[string]string{}
			for _, f := range globalFlags {
				keys[f.name] = f.key
			}
			cfg, err := config.Load(config.Options{File: configFile, Flags: cmd.Flags(), FlagKeys: keys})
			if err != nil {
				return err
			}
			rt.Cfg = cfg
			if rt.Log, err = newLogger(cfg.Log); err != nil {
				return err
			}
			for _, w := range cfg.Warnings() {
				rt.Log.Warn("INSECURE: " + w)
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
		newServeCmd(rt),
		newIngestCmd(rt),
		newDeliverCmd(rt),
		newMigrateCmd(rt),
		newConfigCmd(rt),
		newVersionCmd(),
	)
	root.AddCommand(extraCommands(rt)...)
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
	return &cobra.Command{
		Use:         "version",
		Short:       "Print the version",
		Annotations: map[string]string{noConfig: "true"},
		Args:        cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "ethhook %s (commit %s)\n", Version, Commit)
		},
	}
}

func newConfigCmd(rt *Runtime) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration as YAML, secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
		Run: func(cmd *cobra.Command, args []string) {
			keys := config.Keys()
			names := make([]string, 0, len(keys))
			for k := range keys {
				names = append(names, k)
			}
			sort.Strings(names)
			w := cmd.OutOrStdout()
			for _, k := range names {
				fmt.Fprintf(w, "%-40s %-50s default %v\n", k, strings.Join(config.EnvNames(k), ", "), keys[k])
			}
			fmt.Fprintln(w, "chains (YAML list)                       ETHEREUM_WS_URL, ARBITRUM_WS_URL, OPTIMISM_WS_URL, BASE_WS_URL, SEPOLIA_WS_URL, ... (comma-separated URLs)")
			fmt.Fprintln(w, "redis.url (legacy)                       REDIS_HOST, REDIS_PORT, REDIS_PASSWORD")
		},
	})
	return cmd
}

// logFor gives a module its logger, tagged with its name.
func logFor(rt *Runtime, module string) *zap.Logger {
	return rt.Log.With(zap.String("module", module))
}
