package config

import (
	"strconv"
	"strings"
	"time"
)

// Chain is one EVM chain to watch.
type Chain struct {
	Name    string   `mapstructure:"name"`
	ID      uint64   `mapstructure:"id"`
	WSURLs  []string `mapstructure:"ws_urls" secret:"url"`  // several URLs give failover, tried in order
	HTTPURL string   `mapstructure:"http_url" secret:"url"` // optional; used for backfill when set
	// Confirmations is the default for new endpoints on this chain.
	Confirmations int `mapstructure:"confirmations"`
	// MaxLogRange caps one ranged eth_getLogs (blocks); 0 means the ingest default.
	MaxLogRange uint64 `mapstructure:"max_log_range"`
	// StartBlock is where a chain with no cursor starts; nil means the current head.
	StartBlock *uint64       `mapstructure:"start_block"`
	BlockTime  time.Duration `mapstructure:"block_time"`
	// ReorgDepth is how many recent blocks the ingestor remembers to detect
	// and unwind reorgs.
	ReorgDepth int `mapstructure:"reorg_depth"`
	// MaxReorgDepth bounds a deep reorg (deeper than reorg_depth: orphaned
	// blocks retracted as whole blocks); a deeper one, or one below the
	// block the node reported finalized, is taken for a wrong or broken
	// node and not applied. 0 means 4 x reorg_depth.
	MaxReorgDepth int `mapstructure:"max_reorg_depth"`
	// Quorum, when set, is how many of the chain's ws_urls must answer a
	// block's hash at its number before the block is published (the
	// session's own URL counts as one). Unset (nil) or 1: no cross-check,
	// the URLs are failover only.
	Quorum *int `mapstructure:"quorum"`

	source string // the environment variable that gave the URLs, for errors
}

// DevnetChainID is the chain id of the built-in simulated chain.
const DevnetChainID = 31337

// builtin is the chain registry: what a known chain name means.
var builtin = []struct {
	Chain
	env string // environment variable that sets its ws URL(s), comma separated
}{
	{Chain{Name: "eth", ID: 1, BlockTime: 12 * time.Second, ReorgDepth: 64, Confirmations: 12}, "ETHEREUM_WS_URL"},
	{Chain{Name: "arbitrum", ID: 42161, BlockTime: 250 * time.Millisecond, ReorgDepth: 64}, "ARBITRUM_WS_URL"},
	{Chain{Name: "optimism", ID: 10, BlockTime: 2 * time.Second, ReorgDepth: 64, Confirmations: 10}, "OPTIMISM_WS_URL"},
	{Chain{Name: "base", ID: 8453, BlockTime: 2 * time.Second, ReorgDepth: 64, Confirmations: 10}, "BASE_WS_URL"},
	{Chain{Name: "sepolia", ID: 11155111, BlockTime: 12 * time.Second, ReorgDepth: 64, Confirmations: 12}, "SEPOLIA_WS_URL"},
	{Chain{Name: "arbitrum-sepolia", ID: 421614, BlockTime: 250 * time.Millisecond, ReorgDepth: 64}, "ARBITRUM_SEPOLIA_WS_URL"},
	{Chain{Name: "optimism-sepolia", ID: 11155420, BlockTime: 2 * time.Second, ReorgDepth: 64}, "OPTIMISM_SEPOLIA_WS_URL"},
	{Chain{Name: "base-sepolia", ID: 84532, BlockTime: 2 * time.Second, ReorgDepth: 64}, "BASE_SEPOLIA_WS_URL"},
	{Chain{Name: "devnet", ID: DevnetChainID, BlockTime: time.Second, ReorgDepth: 64}, "DEVNET_WS_URL"},
}

// Builtin returns the registry entry for a chain name or id, or false.
func Builtin(nameOrID string) (Chain, bool) {
	for _, b := range builtin {
		if b.Name == nameOrID || strings.EqualFold(b.Name, nameOrID) || uintString(b.ID) == nameOrID {
			return b.Chain, true
		}
	}
	return Chain{}, false
}

// ChainName is the registry name of a chain id, or "" when unknown.
func ChainName(id uint64) string {
	for _, b := range builtin {
		if b.ID == id {
			return b.Name
		}
	}
	return ""
}

// resolveChains merges the YAML `chains:` list with the registry and the
// per-chain environment variables (which win over the file). A chain is
// watched only when it has at least one URL.
func resolveChains(fromFile []Chain, getenv func(string) string) []Chain {
	var out []Chain
	seen := map[string]int{}
	for _, ch := range fromFile {
		if b, ok := Builtin(ch.Name); ok {
			ch = mergeChain(b, ch)
		}
		fillChainDefaults(&ch)
		seen[ch.Name] = len(out)
		out = append(out, ch)
	}
	for _, b := range builtin {
		raw := strings.TrimSpace(getenv(b.env))
		if raw == "" {
			continue
		}
		urls := splitList(raw)
		if i, ok := seen[b.Name]; ok {
			out[i].WSURLs, out[i].source = urls, b.env
			continue
		}
		ch := b.Chain
		ch.WSURLs, ch.source = urls, b.env
		fillChainDefaults(&ch)
		out = append(out, ch)
	}
	return out
}

func mergeChain(base, over Chain) Chain {
	if over.ID == 0 {
		over.ID = base.ID
	}
	if over.BlockTime == 0 {
		over.BlockTime = base.BlockTime
	}
	if over.ReorgDepth == 0 {
		over.ReorgDepth = base.ReorgDepth
	}
	if over.Confirmations == 0 {
		over.Confirmations = base.Confirmations
	}
	return over
}

func fillChainDefaults(ch *Chain) {
	if ch.ReorgDepth == 0 {
		ch.ReorgDepth = 64
	}
	if ch.BlockTime == 0 {
		ch.BlockTime = 2 * time.Second
	}
}

// WithDevnet returns a copy of c whose only chain is the built-in devnet at
// the devnet module's address: what `serve --all` runs when no chain is set.
func (c Config) WithDevnet() Config {
	b, _ := Builtin("devnet")
	b.ID = c.Devnet.ChainID
	b.BlockTime = c.Devnet.BlockTime
	b.WSURLs = []string{"ws://" + c.Devnet.Addr + "/"}
	b.HTTPURL = "http://" + c.Devnet.Addr + "/"
	c.Chains = []Chain{b}
	return c
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func uintString(n uint64) string { return strconv.FormatUint(n, 10) }
