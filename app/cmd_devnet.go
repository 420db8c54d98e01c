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
	fs.String("addr", def.Addr, "listen address (WebSocket and HTTP JSON-RPC, /control/ API)")
	fs.Uint64("chain-id", def.ChainID, "chain id")
	fs.Int64("seed", def.Seed, "seed: the same seed and operations give the same chain")
	fs.Duration("block-time", def.BlockTime, "time between blocks (down to a few ms)")
	fs.Int("logs-per-block", def.LogsPerBlock, "average logs per block")
	fs.Bool("fixed-logs", def.FixedLogs, "exactly --logs-per-block logs in every block")
	fs.Uint64("max-log-range", def.MaxLogRange, "eth_getLogs max block span, 0 = unlimited (beyond: -32005)")
	fs.Int("max-log-results", def.MaxLogResults, "eth_getLogs max results, 0 = unlimited (beyond: -32005)")
	fs.Uint64("finalized-depth", def.FinalizedDepth, "blocks the finalized tag lags the head")
	fs.Uint64("safe-depth", def.SafeDepth, "blocks the safe tag lags the head (0: half of finalized-depth)")
	fs.Uint64("retain-blocks", def.RetainBlocks, "keep logs of only the newest N blocks in memory (older: rebuilt on demand; 0 = all)")
	fs.Int("retain-logs", def.RetainLogs, "and of no more blocks than hold N logs, about 1 KB each (0 = no bound by logs)")
	fs.Int("reorg-every", 0, "fault: a reorg every N blocks (0 = never)")
	fs.Int("reorg-depth", def.ReorgDepth, "fault: depth of those reorgs")
	fs.Int("skip-every", 0, "fault: skip heads every N blocks")
	fs.Int("skip-count", def.SkipCount, "fault: blocks mined silently per skip")
	fs.Int("drop-every", 0, "fault: drop every WebSocket connection every N blocks")
	fs.Int("stall-every", 0, "fault: stall every N blocks")
	fs.Duration("stall-for", def.StallFor, "fault: length of a stall")
	fs.Int("malformed-every", 0, "fault: one malformed frame every N blocks")
	fs.Int("rate-limit-every", 0, "fault: one rate-limited call every N blocks")
	fs.Int("empty-logs-every", 0, "fault: eth_getLogs by hash answers [] once, every N blocks")
	str := func(name string, dst *string) func() { return func() { *dst, _ = fs.GetString(name) } }
	u64 := func(name string, dst *uint64) func() { return func() { *dst, _ = fs.GetUint64(name) } }
	i64 := func(name string, dst *int64) func() { return func() { *dst, _ = fs.GetInt64(name) } }
	num := func(name string, dst *int) func() { return func() { *dst, _ = fs.GetInt(name) } }
	dur := func(name string, dst *time.Duration) func() { return func() { *dst, _ = fs.GetDuration(name) } }
	boo := func(name string, dst *bool) func() { return func() { *dst, _ = fs.GetBool(name) } }
	return map[string]func(){
		"addr": str("addr", &d.Addr), "chain-id": u64("chain-id", &d.ChainID), "seed": i64("seed", &d.Seed),
		"block-time": dur("block-time", &d.BlockTime), "logs-per-block": num("logs-per-block", &d.LogsPerBlock),
		"fixed-logs": boo("fixed-logs", &d.FixedLogs), "max-log-range": u64("max-log-range", &d.MaxLogRange),
		"max-log-results": num("max-log-results", &d.MaxLogResults), "finalized-depth": u64("finalized-depth", &d.FinalizedDepth), "safe-depth": u64("safe-depth", &d.SafeDepth),
		"retain-blocks": u64("retain-blocks", &d.RetainBlocks), "retain-logs": num("retain-logs", &d.RetainLogs),
		"reorg-every": num("reorg-every", &d.ReorgEvery), "reorg-depth": num("reorg-depth", &d.ReorgDepth),
		"skip-every": num("skip-every", &d.SkipEvery), "skip-count": num("skip-count", &d.SkipCount),
		"drop-every": num("drop-every", &d.DropEvery), "stall-every": num("stall-every", &d.StallEvery),
		"stall-for": dur("stall-for", &d.StallFor), "malformed-every": num("malformed-every", &d.MalformedEvery),
		"rate-limit-every": num("rate-limit-every", &d.RateLimitEvery), "empty-logs-every": num("empty-logs-every", &d.EmptyLogsEvery),
	}
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
		m := devnet.NewModule(*d, logFor(rt, "devnet"))
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
