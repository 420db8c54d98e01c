package bench

// Driving the modules of a run: waiting until each is ready, sleeping
// while watching for a module failure, and mining blocks on schedule.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ethhook/ethhook/modules/devnet"
)

type module interface {
	Name() string
	Run(ctx context.Context) error
	Ready() bool
}

func waitReady(ctx context.Context, errc <-chan error, mods []module, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var waiting []string
		for _, m := range mods {
			if !m.Ready() {
				waiting = append(waiting, m.Name())
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("modules not ready after %s: %s", limit, strings.Join(waiting, ", "))
		}
		if err := sleepUntil(ctx, errc, time.Now().Add(50*time.Millisecond)); err != nil {
			return err
		}
	}
}

// sleepUntil waits for t, a module failure or the end of ctx.
func sleepUntil(ctx context.Context, errc <-chan error, t time.Time) error {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mine mines one block every interval from t0 until end, recording when each
// was mined. A late block is mined at once (the schedule catches up) so the
// achieved rate is what the node can do; it is reported as measured.
func mine(ctx context.Context, node *devnet.Node, rcv *receiver, t0, end time.Time, interval time.Duration) error {
	for k := 0; ; k++ {
		at := t0.Add(time.Duration(k) * interval)
		if !at.Before(end) {
			return nil
		}
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil
			}
		}
		blocks := node.Mine(1)
		now := time.Now()
		for _, b := range blocks {
			rcv.mined(strings.ToLower(b.Hash.Hex()), now, len(b.Logs))
		}
	}
}
