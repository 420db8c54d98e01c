package config

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Devnet configures the built-in simulated chain (owned by modules/devnet).
type Devnet struct {
	Addr          string        `mapstructure:"addr"`
	ChainID       uint64        `mapstructure:"chain_id"`
	Seed          int64         `mapstructure:"seed"`
	BlockTime     time.Duration `mapstructure:"block_time"`
	LogsPerBlock  int           `mapstructure:"logs_per_block"`
	MaxLogRange   uint64        `mapstructure:"max_log_range"`
	MaxLogResults int           `mapstructure:"max_log_results"`
}

// DefaultDevnet holds the devnet defaults.
func DefaultDevnet() Devnet {
	return Devnet{Addr: "127.0.0.1:8545", ChainID: DevnetChainID, Seed: 1, BlockTime: time.Second, LogsPerBlock: 20}
}

// Validate checks the devnet settings.
func (d Devnet) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(d.Addr); err != nil {
		errs = append(errs, fmt.Errorf("devnet.addr: must be host:port, got %q", d.Addr))
	}
	if d.ChainID == 0 {
		errs = append(errs, fmt.Errorf("devnet.chain_id: must not be 0"))
	}
	if d.BlockTime <= 0 {
		errs = append(errs, fmt.Errorf("devnet.block_time: must be > 0, got %s", d.BlockTime))
	}
	if d.LogsPerBlock < 0 {
		errs = append(errs, fmt.Errorf("devnet.logs_per_block: must not be negative"))
	}
	return errors.Join(errs...)
}
