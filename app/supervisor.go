package app

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Module is one part of the pipeline. Run blocks until ctx is cancelled
// (then it drains and returns nil) or until it fails. Reconnect and retry
// loops belong inside Run: an error returned from it is fatal for the process.
type Module interface {
	Name() string
	Run(ctx context.Context) error
}

// Readier is implemented by modules that are not ready the moment they
// start (a chain still connecting, a listener not yet bound).
type Readier interface {
	Ready() bool
}

// Supervisor runs modules: started in registration order, stopped in
// reverse; the first to fail stops the rest and names itself in the error;
// a cancelled parent context (SIGINT/SIGTERM) drains within Grace.
type Supervisor struct {
	Log   *zap.Logger
	Grace time.Duration

	mu       sync.Mutex
	modules  []Module
	started  []bool
	draining bool
}

// Add registers a module; call before Run.
func (s *Supervisor) Add(m Module) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modules = append(s.modules, m)
	s.started = append(s.started, false)
}

// Names lists the registered modules in start order.
func (s *Supervisor) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.modules))
	for i, m := range s.modules {
		out[i] = m.Name()
	}
	return out
}

// NotReady lists the modules that are not ready, in start order. While the
// supervisor drains every module counts as not ready, so a load balancer
// stops sending traffic before the listeners close.
func (s *Supervisor) NotReady() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i, m := range s.modules {
		r, ok := m.(Readier)
		if s.draining || !s.started[i] || (ok && !r.Ready()) {
			out = append(out, m.Name())
		}
	}
	return out
}

type exit struct {
	index int
	err   error
}

// Run starts every module and blocks until they have all stopped. It
// returns nil after a clean drain caused by ctx, or an error naming the
// module that failed (or the modules that outlived the grace period).
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	modules := append([]Module(nil), s.modules...)
	s.mu.Unlock()
	if len(modules) == 0 {
		return errors.New("no modules to run")
	}
	grace := s.Grace
	if grace <= 0 {
		grace = 30 * time.Second
	}

	cancels := make([]context.CancelFunc, len(modules))
	done := make([]chan struct{}, len(modules))
	exits := make(chan exit, len(modules))
	for i, m := range modules {
		mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i], done[i] = cancel, make(chan struct{})
		s.Log.Info("starting module", zap.String("module", m.Name()))
		go func() {
			defer close(done[i])
			exits <- exit{i, runModule(mctx, m)}
		}()
		s.mu.Lock()
		s.started[i] = true
		s.mu.Unlock()
	}

	var failure error
	select {
	case <-ctx.Done():
		s.Log.Info("shutdown requested, draining", zap.Duration("grace", grace))
	case e := <-exits:
		name := modules[e.index].Name()
		if e.err == nil {
			e.err = errors.New("stopped unexpectedly")
		}
		failure = fmt.Errorf("module %s failed: %w", name, e.err)
		s.Log.Error("module failed, stopping the others", zap.String("module", name), zap.Error(e.err))
	}
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()

	// Stop in reverse order, each within what is left of the grace period.
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	var stuck []string
	for i := len(modules) - 1; i >= 0; i-- {
		cancels[i]()
		select {
		case <-done[i]:
			s.Log.Info("module stopped", zap.String("module", modules[i].Name()))
		case <-deadline.C:
			stuck = append(stuck, modules[i].Name())
			for j := i - 1; j >= 0; j-- {
				cancels[j]()
				select {
				case <-done[j]:
				default:
					stuck = append(stuck, modules[j].Name())
				}
			}
			i = -1
		}
	}
	// Modules that failed while draining. The channel stays open: a stuck
	// module may still send to it later (it has room for every module).
	for drained := false; !drained; {
		select {
		case e := <-exits:
			if e.err != nil && failure == nil {
				failure = fmt.Errorf("module %s failed while stopping: %w", modules[e.index].Name(), e.err)
			}
		default:
			drained = true
		}
	}
	if len(stuck) > 0 {
		err := fmt.Errorf("shutdown grace of %s exceeded; still running: %v", grace, stuck)
		return errors.Join(failure, err)
	}
	return failure
}

// runModule runs m and turns a panic into an error, so one module's bug
// stops the process cleanly instead of killing it mid-write.
func runModule(ctx context.Context, m Module) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	err = m.Run(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // a module that returns ctx.Err() on shutdown stopped cleanly
	}
	return err
}
