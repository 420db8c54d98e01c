package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/deliver/listen"
	"github.com/ethhook/ethhook/tenant"
)

// demoDescription marks the endpoint the demo seeds, so a restart finds it.
const demoDescription = "demo: devnet ERC-20 Transfers to the built-in receiver"

// demo is what `serve --all` adds on the devnet so a new user sees signed
// webhooks flow at once: an application "demo" with one endpoint for the
// devnet's Transfer events, pointing at a built-in receiver that verifies
// every signature (the same receiver as `ethhook listen`) and logs it.
type demo struct {
	rt    *Runtime
	log   *zap.Logger
	ready atomic.Bool
}

func (d *demo) Name() string { return "demo" }
func (d *demo) Ready() bool  { return d.ready.Load() }

func (d *demo) Run(ctx context.Context) error {
	pool, rdb, box, err := d.rt.storage(ctx)
	if err != nil {
		return err
	}
	apps := tenant.New(pool).WithDefaultPlan(d.rt.Cfg.Admin.DefaultPlan)
	if err := apps.CheckDefaultPlan(ctx); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	eps := endpoint.New(pool, box, rdb, d.rt.Keys(), d.rt.Cfg.Chains)
	addr := d.rt.Cfg.Devnet.DemoAddr
	appID, epID, secret, err := d.seed(ctx, apps, eps, "http://"+addr+"/webhook")
	if err != nil {
		return fmt.Errorf("seed demo endpoint: %w", err)
	}
	h, err := listen.New([]string{secret}, http.StatusOK, &logWriter{log: d.log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo receiver: listen on %s (devnet.demo_addr): %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	d.log.Info("demo: signed webhooks of the devnet's Transfer events arrive at the built-in receiver and are logged here as `webhook received`; see them in the web UI and API as well",
		zap.String("receiver", "http://"+addr+"/webhook"), zap.String("app", appID), zap.String("endpoint", epID),
		zap.String("ui", browseURL(d.rt.Cfg.HTTPAddr)))
	d.ready.Store(true)
	return serveUntil(ctx, srv, ln, 5*time.Second, nil)
}

// seed finds or creates the demo application and endpoint and returns the
// endpoint's signing secret.
func (d *demo) seed(ctx context.Context, apps *tenant.Store, eps *endpoint.Service, url string) (appID, epID, secret string, err error) {
	found, _, err := apps.FindApplications(ctx, hook.Operator, tenant.ApplicationFilter{Name: "demo"}, "", 100)
	if err != nil {
		return "", "", "", err
	}
	for _, a := range found {
		if a.Name != "demo" {
			continue
		}
		list, _, err := eps.List(ctx, hook.Operator, a.ID, "", 100)
		if err != nil {
			return "", "", "", err
		}
		for _, e := range list {
			if e.Description == demoDescription {
				s, err := eps.Secret(ctx, hook.Operator, a.ID, e.ID)
				return a.ID, e.ID, s, err
			}
		}
		appID = a.ID
	}
	if appID == "" {
		app, err := apps.CreateApplication(ctx, hook.Operator, "demo", "")
		if err != nil {
			return "", "", "", err
		}
		appID = app.ID
	}
	confirmations := 2
	e, s, err := eps.Create(ctx, hook.Operator, appID, endpoint.Input{
		URL:           url,
		Description:   demoDescription,
		Filter:        hook.Filter{Chains: []uint64{d.rt.Cfg.Devnet.ChainID}, Events: []string{"Transfer(address,address,uint256)"}},
		Confirmations: &confirmations,
	})
	return appID, e.ID, s, err
}

// logWriter turns the receiver's one-line summaries ("#12 ... signature ok
// -> 200") into log lines; the payloads it prints after them are left to
// the web UI, where they are easier to read.
type logWriter struct {
	log *zap.Logger
}

func (w *logWriter) Write(p []byte) (int, error) {
	if line := strings.TrimSpace(string(p)); strings.HasPrefix(line, "#") {
		w.log.Info("webhook received", zap.String("receiver", line))
	}
	return len(p), nil
}

var _ io.Writer = (*logWriter)(nil)

// browseURL is the address a person on this machine opens for a listen
// address: ":8080" and "0.0.0.0:8080" listen everywhere, but "http://:8080"
// is no URL a browser takes.
func browseURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
