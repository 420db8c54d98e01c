package app

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ethhook/ethhook/config"
)

func TestJSONLogLinesCarryTheModuleKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(dedupFields(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.InfoLevel)))
	// What serve does for process and deliver: logFor tags the logger,
	// then the module tags it again.
	log.With(zap.String("module", "process")).With(zap.String("module", "process"), zap.Int("chain", 1)).
		Info("x", zap.String("module", "again"), zap.String("endpoint", "ep_1"))
	line := buf.String()
	if n := strings.Count(line, `"module"`); n != 1 {
		t.Fatalf("module key %d times: %s", n, line)
	}
	for _, want := range []string{`"module":"process"`, `"chain":1`, `"endpoint":"ep_1"`} {
		if !strings.Contains(line, want) {
			t.Fatalf("line lacks %s: %s", want, line)
		}
	}
	l, err := newLogger(config.Log{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Core().(*onceCore); !ok {
		t.Fatalf("newLogger's core %T does not drop repeated keys", l.Core())
	}
}

func TestCommitComesFromTheBuildInfoWithoutLdflags(t *testing.T) {
	info := func(settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Settings: settings}, true }
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "80e084d1"}
	for _, c := range []struct {
		name, ldflags string
		read          func() (*debug.BuildInfo, bool)
		want          string
	}{
		{"go build in a clean tree", "unknown", info(rev, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), "80e084d1"},
		{"go build with changes", "unknown", info(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), "80e084d1-dirty"},
		{"make sets it", "abc123", info(rev), "abc123"},
		{"no VCS stamp", "unknown", info(), "unknown"},
		{"no build info", "unknown", func() (*debug.BuildInfo, bool) { return nil, false }, "unknown"},
	} {
		if got := commitOf(c.ldflags, c.read); got != c.want {
			t.Errorf("%s: commit %q, want %q", c.name, got, c.want)
		}
	}
}
