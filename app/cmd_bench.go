package app

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/bench"
	"github.com/ethhook/ethhook/seal"
)

// newBenchCmd is `ethhook bench`: the end-to-end load run of DESIGN.md's
// performance targets, in one process against the configured Postgres and
// Redis.
func newBenchCmd(rt *Runtime) *cobra.Command {
	var (
		o          bench.Options
		asJSON     bool
		cpuProfile string
		memProfile string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the whole pipeline: devnet -> ingest -> process -> deliver -> receiver",
		Long: `Run the devnet (on a random loopback port), ingest, process and deliver in
this process against the configured Postgres and Redis, with --endpoints
endpoints pointing at a built-in receiver that verifies every signature.
Blocks of --logs-per-block logs are mined at --rate events/s for --warmup,
then for the measured --duration; then the run waits up to --drain for the
queued webhooks to arrive.

It prints events/s ingested into the stream, messages/s queued, webhooks/s
delivered (valid and answered 2xx), the p50/p95/p99 latency of block mined ->
stream entry, stream entry -> queued (process's histogram: bucket bounds)
and block mined -> webhook received, the peak RSS (VmHWM) and the CPU time
of the process. The devnet and the receiver run in the process too, so
their memory and CPU are in those figures.

The run never touches real data: a fresh Redis prefix (bench-<random>:),
a fresh chain id and a fresh application on an unlimited plan
("bench-unlimited", created once and kept); it deletes the application
(cascade) and its Redis keys at the end unless --keep. Like serve it
refuses to run while database migrations are pending. Without
ETHHOOK_SECRET_KEY the run seals its endpoints' secrets with a throwaway key.
` + envHelp("database_url", "redis.url", "secret_key", "ingest.", "process.", "delivery."),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := o.Validate(); err != nil {
				return err
			}
			if err := refusePendingMigrations(ctx, rt); err != nil {
				return err
			}
			pool, rdb, err := rt.pgRedis(ctx)
			if err != nil {
				return err
			}
			var box *seal.Box
			if rt.Cfg.SecretKey != "" {
				if box, err = rt.SecretBox(); err != nil {
					return err
				}
			}
			for _, p := range []struct {
				flag, path string
				dst        *io.Writer
			}{{"cpuprofile", cpuProfile, &o.CPUProfile}, {"memprofile", memProfile, &o.MemProfile}} {
				if p.path == "" {
					continue
				}
				f, err := os.Create(p.path)
				if err != nil {
					return fmt.Errorf("--%s: %w", p.flag, err)
				}
				defer f.Close()
				*p.dst = f
			}
			o.Log = zap.NewNop()
			if rt.Log != nil {
				o.Log = logFor(rt, "bench")
			}
			applyMemoryLimit(o.Log) // as serve does
			res, err := bench.Run(ctx, bench.Deps{Cfg: rt.Cfg, Pool: pool, Redis: rdb, Box: box}, o)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			res.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Endpoints, "endpoints", 100, "endpoints, all pointing at the built-in receiver")
	f.Float64Var(&o.Share, "share", 1, "share of the logs each endpoint matches (1: every log; below 1: by topic 1 accounts, approximate, measured share is printed)")
	f.Float64Var(&o.Rate, "rate", 1000, "target events (logs) mined per second")
	f.IntVar(&o.LogsPerBlock, "logs-per-block", 100, "logs in every block; blocks come every logs-per-block/rate seconds")
	f.DurationVar(&o.Duration, "duration", 30*time.Second, "measured window")
	f.DurationVar(&o.Warmup, "warmup", 5*time.Second, "mining before the measured window")
	f.DurationVar(&o.Drain, "drain", 30*time.Second, "longest wait after mining for queued webhooks to arrive")
	f.Int64Var(&o.Seed, "seed", 1, "devnet seed")
	f.BoolVar(&o.Keep, "keep", false, "keep the application and the Redis keys of the run")
	f.StringVar(&o.Ordering, "ordering", "", "the endpoints' delivery order: parallel (default) or fifo (in chain order)")
	f.StringVar(&o.FIFOKey, "fifo-key", "", "with --ordering fifo, one order per value of: contract, topic1, topic2 or topic3 (default: one order per chain)")
	f.StringVar(&o.Signature, "signature", "", "the endpoints' signature scheme: hmac (default, v1) or ed25519 (v1a); the receiver verifies either")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the measured window to this file (go tool pprof)")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile taken at the end of the measured window to this file")
	return cmd
}
