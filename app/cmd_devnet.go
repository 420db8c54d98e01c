package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/modules/devnet"
)

// devnetFlags binds each `ethhook devnet` flag to its devnet.* key; a flag
// given on the command line wins over environment, file and defaults.
func devnetFlags(fs *pflag.FlagSet, d *config.Devnet) map[string]func() {
	def := config.DefaultDevnet()
	apply := map[string]func(){}
	bindFlag(apply, fs.StringVar, "addr", &d.Addr, def.Addr, "listen address (WebSocket and HTTP JSON-RPC, /control/ API)")
	bindFlag(apply, fs.Uint64Var, "chain-id", &d.ChainID, def.ChainID, "chain id")
	bindFlag(apply, fs.Int64Var, "seed", &d.Seed, def.Seed, "seed: the same seed and operations give the same chain")
	bindFlag(apply, fs.DurationVar, "block-time", &d.BlockTime, def.BlockTime, "time between blocks (down to a few ms)")
	bindFlag(apply, fs.IntVar, "logs-per-block", &d.LogsPerBlock, def.LogsPerBlock, "average logs per block")
	bindFlag(apply, fs.BoolVar, "fixed-logs", &d.FixedLogs, def.FixedLogs, "exactly --logs-per-block logs in every block")
	bindFlag(apply, fs.Uint64Var, "max-log-range", &d.MaxLogRange, def.MaxLogRange, "eth_getLogs max block span, 0 = unlimited (beyond: -32005)")
	bindFlag(apply, fs.IntVar, "max-log-results", &d.MaxLogResults, def.MaxLogResults, "eth_getLogs max results, 0 = unlimited (beyond: -32005)")
	bindFlag(apply, fs.Uint64Var, "finalized-depth", &d.FinalizedDepth, def.FinalizedDepth, "blocks the finalized tag lags the head")
	bindFlag(apply, fs.Uint64Var, "safe-depth", &d.SafeDepth, def.SafeDepth, "blocks the safe tag lags the head (0: half of finalized-depth)")
	bindFlag(apply, fs.Uint64Var, "retain-blocks", &d.RetainBlocks, def.RetainBlocks, "keep logs of only the newest N blocks in memory (older: rebuilt on demand; 0 = all)")
	bindFlag(apply, fs.IntVar, "retain-logs", &d.RetainLogs, def.RetainLogs, "and of no more blocks than hold N logs, about 1 KB each (0 = no bound by logs)")
	bindFlag(apply, fs.IntVar, "reorg-every", &d.ReorgEvery, 0, "fault: a reorg every N blocks (0 = never)")
	bindFlag(apply, fs.IntVar, "reorg-depth", &d.ReorgDepth, def.ReorgDepth, "fault: depth of those reorgs")
	bindFlag(apply, fs.IntVar, "skip-every", &d.SkipEvery, 0, "fault: skip heads every N blocks")
	bindFlag(apply, fs.IntVar, "skip-count", &d.SkipCount, def.SkipCount, "fault: blocks mined silently per skip")
	bindFlag(apply, fs.IntVar, "drop-every", &d.DropEvery, 0, "fault: drop every WebSocket connection every N blocks")
	bindFlag(apply, fs.IntVar, "stall-every", &d.StallEvery, 0, "fault: stall every N blocks")
	bindFlag(apply, fs.DurationVar, "stall-for", &d.StallFor, def.StallFor, "fault: length of a stall")
	bindFlag(apply, fs.IntVar, "malformed-every", &d.MalformedEvery, 0, "fault: one malformed frame every N blocks")
	bindFlag(apply, fs.IntVar, "rate-limit-every", &d.RateLimitEvery, 0, "fault: one rate-limited call every N blocks")
	bindFlag(apply, fs.IntVar, "empty-logs-every", &d.EmptyLogsEvery, 0, "fault: eth_getLogs by hash answers [] once, every N blocks")
	return apply
}

// bindFlag defines flag name with define (fs.IntVar, fs.StringVar, ...) on
// a variable of its own, and records in apply how it sets dst, so only a
// flag given on the command line overrides the configured value.
func bindFlag[T any](apply map[string]func(), define func(p *T, name string, value T, usage string), name string, dst *T, def T, usage string) {
	v := new(T)
	define(v, name, def, usage)
	apply[name] = func() { *dst = *v }
}

func newDevnetCmd(rt *Runtime) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run the built-in simulated EVM chain (JSON-RPC over WebSocket and HTTP)",
		Long: `Run the devnet: a simulated EVM chain, deterministic from a seed, that speaks
JSON-RPC 2.0 over WebSocket and HTTP on one address (eth_chainId, net_version,
eth_blockNumber, eth_getBlockByNumber/Hash, eth_getLogs, eth_subscribe newHeads
and logs, batches). Its blocks carry ERC-20 Transfer/Approval and Uniswap-V2
Swap logs with real topics, ABI data and logsBloom.

Faults are injected at a rate by the --*-every flags, or on demand through
the control API (or 'ethhook devnet control'):
  POST /control/mine {"n":k}       POST /control/reorg {"depth":d}
  POST /control/skip {"n":k}       POST /control/drop
  POST /control/stall {"ms":n}     POST /control/malformed {"n":k}
  POST /control/ratelimit {"n":k}  POST /control/emptylogs
  POST /control/pause              POST /control/resume
  GET  /control/head               GET  /control/stats

With --http-addr, /healthz and /readyz are served on that address too.
` + envHelp("devnet."),
		Args: cobra.NoArgs,
	}
	d := &rt.Cfg.Devnet
	apply := devnetFlags(cmd.Flags(), d)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.Flags().Visit(func(f *pflag.Flag) {
			if set, ok := apply[f.Name]; ok {
				set()
			}
		})
		if err := d.Validate(); err != nil {
			return err
		}
		m := devnet.NewModule(rt.deps("devnet"), devnet.Options{}) // rt.Cfg.Devnet is *d, flags applied
		if f := cmd.Flags().Lookup("http-addr"); f == nil || !f.Changed {
			return m.Run(cmd.Context())
		}
		// --http-addr given: /healthz and /readyz there (ready once the
		// devnet listens), like every other long-running role. Only the
		// flag: a config file's http_addr is serve's, and the devnet next
		// to it must not take its port.
		sup := &Supervisor{Log: rt.Log, Grace: rt.Cfg.ShutdownGrace}
		sup.Add(&httpServer{name: "http", addr: rt.Cfg.HTTPAddr, handler: healthHandler(sup, nil), limits: rt.Cfg.Admin, log: logFor(rt, "http")})
		sup.Add(m)
		return sup.Run(cmd.Context())
	}
	cmd.AddCommand(newDevnetControlCmd(rt))
	return cmd
}

func newDevnetControlCmd(rt *Runtime) *cobra.Command {
	var url string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "control ACTION [key=value ...]",
		Short: "Send a fault or mining command to a running devnet",
		Long: `Send one control command to a running devnet, e.g.
  ethhook devnet control mine n=5
  ethhook devnet control reorg depth=3
  ethhook devnet control stall ms=5000
  ethhook devnet control head`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if url == "" {
				url = "http://" + rt.Cfg.Devnet.Addr
			}
			target := strings.TrimSuffix(url, "/") + "/control/" + args[0]
			body := map[string]int{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				n, err := strconv.Atoi(v)
				if !ok || err != nil {
					return fmt.Errorf("argument %q: want key=integer", kv)
				}
				body[k] = n
			}
			var resp *http.Response
			var err error
			client := &http.Client{Timeout: 30 * time.Second}
			if args[0] == "head" || args[0] == "stats" {
				resp, err = client.Get(target)
			} else {
				b, _ := json.Marshal(body)
				resp, err = client.Post(target, "application/json", bytes.NewReader(b))
			}
			if err != nil {
				return fmt.Errorf("devnet control %s: %w", args[0], err)
			}
			defer resp.Body.Close()
			out, err := io.ReadAll(resp.Body)
			if err != nil {
				return fmt.Errorf("devnet control %s: read answer: %w", args[0], err)
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("devnet control %s: %s: %s", args[0], resp.Status, bytes.TrimSpace(out))
			}
			if asJSON {
				// The devnet answers JSON; check it is, so a script gets JSON or an error.
				var v any
				if err := json.Unmarshal(out, &v); err != nil {
					return fmt.Errorf("devnet control %s: the devnet's answer is not JSON: %q", args[0], bytes.TrimSpace(out))
				}
				return printJSON(cmd.OutOrStdout(), v)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "devnet base URL (default http://<devnet.addr>)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
