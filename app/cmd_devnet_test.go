package app

import (
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ethhook/ethhook/config"
)

func TestDevnetFlagsOverrideTheConfigOnlyWhereGiven(t *testing.T) {
	d := config.DefaultDevnet()
	d.Addr, d.Seed, d.StallEvery = "127.0.0.1:1", 99, 5 // as if from the environment or a file
	fs := pflag.NewFlagSet("devnet", pflag.ContinueOnError)
	apply := devnetFlags(fs, &d)
	fs.VisitAll(func(f *pflag.Flag) {
		if apply[f.Name] == nil {
			t.Errorf("flag --%s sets no devnet key", f.Name)
		}
	})
	if err := fs.Parse([]string{"--chain-id", "4242", "--block-time", "50ms", "--fixed-logs", "--reorg-every", "3", "--retain-blocks", "64"}); err != nil {
		t.Fatal(err)
	}
	fs.Visit(func(f *pflag.Flag) { apply[f.Name]() })
	if d.ChainID != 4242 || d.BlockTime != 50*time.Millisecond || !d.FixedLogs || d.ReorgEvery != 3 || d.RetainBlocks != 64 {
		t.Errorf("given flags not applied: %+v", d)
	}
	if d.Addr != "127.0.0.1:1" || d.Seed != 99 || d.StallEvery != 5 {
		t.Errorf("flags not given overrode the configured values: %+v", d)
	}
}
