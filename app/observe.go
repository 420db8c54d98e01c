package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ethhook/ethhook/config"
)

// Build information, set with -ldflags "-X github.com/ethhook/ethhook/app.Version=...".
// Without them (go build, go install) Commit comes from the VCS revision
// Go stamps into the binary, so ethhook_build_info names the commit anyway.
var (
	Version = "dev"
	Commit  = "unknown"
)

func init() { Commit = commitOf(Commit, debug.ReadBuildInfo) }

// commitOf is commit unless it is "unknown" and the build info has a
// vcs.revision (with "-dirty" when the tree had changes).
func commitOf(commit string, read func() (*debug.BuildInfo, bool)) string {
	if commit != "unknown" {
		return commit
	}
	bi, ok := read()
	if !ok {
		return commit
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return commit
	}
	return rev + dirty
}

// newLogger builds zap: JSON for production, a readable console for development.
func newLogger(c config.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	var zc zap.Config
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "ts"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	return zc.Build(zap.WrapCore(dedupFields))
}

// newRegistry is the process's Prometheus registry with the Go and process
// collectors and ethhook_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ethhook_build_info",
		Help: "Build information of the running ethhook binary; always 1.",
	}, []string{"version", "commit", "goversion"})
	info.WithLabelValues(Version, Commit, runtime.Version()).Set(1)
	reg.MustRegister(info)
	return reg
}

// httpServer is a module serving a handler on an address until its context
// is cancelled, then shutting down gracefully.
type httpServer struct {
	name    string
	addr    string
	handler http.Handler
	limits  config.Admin // its *Timeout settings bound every connection in time
	log     *zap.Logger
	ready   atomic.Bool
	bound   atomic.Value // string: the address actually listened on
}

func (h *httpServer) Name() string { return h.name }
func (h *httpServer) Ready() bool  { return h.ready.Load() }

// Addr is the bound address once Ready (useful with port 0).
func (h *httpServer) Addr() string {
	if a, ok := h.bound.Load().(string); ok {
		return a
	}
	return ""
}

func (h *httpServer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", h.addr, err)
	}
	srv := &http.Server{
		Handler:           h.handler,
		ReadHeaderTimeout: h.limits.ReadHeaderTimeout,
		ReadTimeout:       h.limits.ReadTimeout,
		WriteTimeout:      h.limits.WriteTimeout,
		IdleTimeout:       h.limits.IdleTimeout,
	}
	h.bound.Store(ln.Addr().String())
	h.ready.Store(true)
	h.log.Info("listening", zap.String("addr", ln.Addr().String()))
	return serveUntil(ctx, srv, ln, 10*time.Second, func() { h.ready.Store(false) })
}

// serveUntil serves srv on ln until serving fails or ctx ends; then it
// calls stopping (when not nil) and shuts srv down, giving the requests in
// flight grace to finish.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration, stopping func()) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if stopping != nil {
		stopping()
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// metricsServer serves /metrics on addr (config.MetricsListenAddr).
func metricsServer(addr string, reg *prometheus.Registry, limits config.Admin, log *zap.Logger) *httpServer {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return &httpServer{name: "metrics", addr: addr, handler: mux, limits: limits, log: log.With(zap.String("module", "metrics"))}
}

// healthHandler answers /healthz (the process is alive) and /readyz (200
// only when every module is ready; otherwise 503 listing the ones that are
// not), and passes every other path to next (the admin API and UI).
func healthHandler(sup *Supervisor, next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": Version})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		notReady := sup.NotReady()
		if len(notReady) == 0 {
			writeJSON(w, http.StatusOK, map[string]any{"ready": true, "modules": sup.Names()})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "not_ready": notReady})
	})
	if next != nil {
		mux.Handle("/", next)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
