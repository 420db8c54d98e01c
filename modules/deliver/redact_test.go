package deliver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
)

func TestFailedDeliveryLogsAndRecordsTheURLWithoutItsQueryToken(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.AllowCIDRs = nil // 127.0.0.1 is refused: the attempt fails with the URL in its error
	rc := newReceiver(t, nil)
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, "http://hookuser:hookpass@"+strings.TrimPrefix(rc.URL, "http://")+"/in?token=s3cr3t-token&v=2", epOpt{})
	id, _ := e.message(t, app, ep, "")

	core, logs := observer.New(zapcore.DebugLevel)
	m, err := New(module.Deps{Config: e.cfg, Pool: e.pool, Redis: e.rdb, Box: e.box, Version: "1.2.3", Log: zap.New(core), Registerer: prometheus.NewRegistry()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	e.waitState(t, id, hook.StateDead)
	_, text := e.lastAttempt(t, id)
	if strings.Contains(text, "s3cr3t-token") || strings.Contains(text, "hookpass") || !strings.Contains(text, "/in?token=***") {
		t.Fatalf("attempt error %q: want the URL with its query masked", text)
	}
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage("delivery failed").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	failed := logs.FilterMessage("delivery failed").All()
	if len(failed) == 0 {
		t.Fatal("no debug line for the failed delivery")
	}
	for _, entry := range logs.All() {
		line := entry.Message
		for _, f := range entry.Context {
			line += " " + f.String
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok {
					line += " " + err.Error()
				}
			}
		}
		if strings.Contains(line, "s3cr3t-token") || strings.Contains(line, "hookpass") {
			t.Fatalf("log line shows the endpoint's token: %s", line)
		}
	}
	if errText := failed[0].ContextMap()["error"]; !strings.Contains(errText.(string), "token=***") {
		t.Fatalf("debug line error %q: want the masked URL", errText)
	}
}
