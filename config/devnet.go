package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Devnet configures the built-in simulated chain (owned by modules/devnet).
type Devnet struct {
	Addr string `mapstructure:"addr"`
	// DemoAddr is where `serve --all` on the devnet runs a receiver for the
	// seeded demo endpoint (empty: no demo); a loopback address and port,
	// which deliveries are then allowed to reach (that port only).
	DemoAddr string `mapstructure:"demo_addr"`
	ChainID  uint64 `mapstructure:"chain_id"`
	// Seed makes the chain deterministic: the same seed and the same
	// operations give the same blocks, hashes and logs.
	Seed      int64         `mapstructure:"seed"`
	BlockTime time.Duration `mapstructure:"block_time"`
	// LogsPerBlock is the average number of logs per block (exact with
	// FixedLogs).
	LogsPerBlock int  `mapstructure:"logs_per_block"`
	FixedLogs    bool `mapstructure:"fixed_logs"`
	// MaxLogRange and MaxLogResults make eth_getLogs answer provider-like
	// -32005 errors beyond that many blocks / results; 0 = unlimited.
	MaxLogRange   uint64 `mapstructure:"max_log_range"`
	MaxLogResults int    `mapstructure:"max_log_results"`
	// FinalizedDepth is how many blocks the "finalized" tag lags the head.
	FinalizedDepth uint64 `mapstructure:"finalized_depth"`
	// SafeDepth is how many blocks the "safe" tag lags the head; 0 = half
	// of finalized_depth.
	SafeDepth uint64 `mapstructure:"safe_depth"`
	// RetainBlocks keeps logs of only the newest N blocks in memory; older
	// ones are rebuilt from the seed on demand. 0 keeps everything.
	RetainBlocks uint64 `mapstructure:"retain_blocks"`
	// RetainLogs also bounds the logs kept in memory that way (about 1 KB
	// each), whatever the block size; 0 = no bound by logs.
	RetainLogs int `mapstructure:"retain_logs"`

	// Automatic faults, counted in mined blocks; 0 disables each.
	ReorgEvery     int           `mapstructure:"reorg_every"`
	ReorgDepth     int           `mapstructure:"reorg_depth"`
	SkipEvery      int           `mapstructure:"skip_every"`
	SkipCount      int           `mapstructure:"skip_count"`
	DropEvery      int           `mapstructure:"drop_every"`
	StallEvery     int           `mapstructure:"stall_every"`
	StallFor       time.Duration `mapstructure:"stall_for"`
	MalformedEvery int           `mapstructure:"malformed_every"`
	RateLimitEvery int           `mapstructure:"rate_limit_every"`
	EmptyLogsEvery int           `mapstructure:"empty_logs_every"`
}

// DefaultDevnet holds the devnet defaults.
func DefaultDevnet() Devnet {
	return Devnet{
		Addr: "127.0.0.1:8545", DemoAddr: "127.0.0.1:9000", ChainID: DevnetChainID, Seed: 1, BlockTime: time.Second, LogsPerBlock: 20,
		FinalizedDepth: 64, RetainBlocks: 2048, RetainLogs: 16384, ReorgDepth: 1, SkipCount: 3, StallFor: 2 * time.Second,
	}
}

// Validate checks the devnet settings.
func (d Devnet) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("devnet.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(d.Addr); err != nil {
		bad("addr", "must be host:port, got %q", d.Addr)
	}
	if d.DemoAddr != "" {
		host, port, err := net.SplitHostPort(d.DemoAddr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || !isLoopback(host) {
			bad("demo_addr", "must be a loopback address and port like 127.0.0.1:9000 (deliveries may reach exactly it), got %q", d.DemoAddr)
		}
	}
	if d.ChainID == 0 {
		bad("chain_id", "must not be 0")
	}
	if d.BlockTime <= 0 {
		bad("block_time", "must be > 0, got %s", d.BlockTime)
	}
	if d.LogsPerBlock < 0 || d.LogsPerBlock > 100_000 {
		bad("logs_per_block", "must be 0..100000, got %d", d.LogsPerBlock)
	}
	if d.MaxLogResults < 0 {
		bad("max_log_results", "must not be negative, got %d", d.MaxLogResults)
	}
	for _, f := range []struct {
		key string
		v   int
	}{
		{"reorg_every", d.ReorgEvery}, {"skip_every", d.SkipEvery}, {"drop_every", d.DropEvery},
		{"stall_every", d.StallEvery}, {"malformed_every", d.MalformedEvery},
		{"rate_limit_every", d.RateLimitEvery}, {"empty_logs_every", d.EmptyLogsEvery},
	} {
		if f.v < 0 {
			bad(f.key, "must not be negative (0 disables), got %d", f.v)
		}
	}
	if d.RetainLogs < 0 {
		bad("retain_logs", "must not be negative, got %d", d.RetainLogs)
	}
	if d.RetainBlocks > 0 && d.ReorgEvery > 0 && uint64(d.ReorgDepth) >= d.RetainBlocks {
		bad("retain_blocks", "must exceed reorg_depth (%d) or be 0, got %d", d.ReorgDepth, d.RetainBlocks)
	}
	if d.ReorgEvery > 0 && d.ReorgDepth < 1 {
		bad("reorg_depth", "must be >= 1 when reorg_every is set, got %d", d.ReorgDepth)
	}
	if d.ReorgEvery > 0 && d.FinalizedDepth > 0 && uint64(d.ReorgDepth) >= d.FinalizedDepth {
		bad("reorg_depth", "must be below finalized_depth (%d), got %d", d.FinalizedDepth, d.ReorgDepth)
	}
	if d.SkipEvery > 0 && d.SkipCount < 1 {
		bad("skip_count", "must be >= 1 when skip_every is set, got %d", d.SkipCount)
	}
	if d.StallEvery > 0 && d.StallFor <= 0 {
		bad("stall_for", "must be > 0 when stall_every is set, got %s", d.StallFor)
	}
	return errors.Join(errs...)
}

// DemoReceiver lists the addresses the demo endpoint's deliveries connect
// to (devnet.demo_addr; localhost is both loopback addresses), which the
// SSRF guard lets through on that port only. Nil without a demo.
func (d Devnet) DemoReceiver() []netip.AddrPort {
	host, port, err := net.SplitHostPort(d.DemoAddr)
	if err != nil {
		return nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return nil
	}
	if host == "localhost" {
		return []netip.AddrPort{
			netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(n)),
			netip.AddrPortFrom(netip.IPv6Loopback(), uint16(n)),
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return nil
	}
	return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(n))}
}
