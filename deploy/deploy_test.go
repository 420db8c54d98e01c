package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ethhook/ethhook/app"
	"github.com/ethhook/ethhook/internal/testenv"
)

// Labels Prometheus adds at scrape time, and the histogram bucket label.
var scrapeLabels = map[string]bool{"instance": true, "job": true, "le": true}

var (
	metricName = regexp.MustCompile(`\bethhook_[a-z0-9_]+`)
	// by (...), without (...), on (...), ignoring (...), group_left (...)
	grouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// name{a="x", b!~"y"}
	selector = regexp.MustCompile(`(ethhook_[a-z0-9_]+)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

func dashboardQueries(t *testing.T) []query {
	b, err := os.ReadFile("grafana/ethhook.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/ethhook.json: %v", err)
	}
	var out []query
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, query{"panel " + p.Title, tg.Expr})
		}
	}
	return out
}

func alertQueries(t *testing.T) []query {
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	var out []query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, query{"alert " + r.Alert, r.Expr})
		}
	}
	return out
}

// scrape reads /metrics into sample name -> label names seen on it, and
// returns the sample lines and the "# TYPE" lines too.
func scrape(url string) (map[string]map[string]bool, []string, []string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, nil, nil, err
	}
	defer resp.Body.Close()
	out := map[string]map[string]bool{}
	var lines, types []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "# TYPE ") {
			types = append(types, l)
		}
		if l == "" || l[0] == '#' {
			continue
		}
		lines = append(lines, l)
		name, rest, _ := strings.Cut(l, "{")
		name = strings.Fields(name)[0]
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if rest != "" {
			for _, m := range matcher.FindAllStringSubmatch(rest[:strings.LastIndexByte(rest, '}')], -1) {
				out[name][m[1]] = true
			}
		}
	}
	return out, lines, types, sc.Err()
}

// missing lists what queries use that the scrape lacks: metric names, and
// label names that no metric of the query carries.
func missing(qs []query, seen map[string]map[string]bool) []string {
	var out []string
	for _, q := range qs {
		names := metricName.FindAllString(q.expr, -1)
		if len(names) == 0 {
			out = append(out, fmt.Sprintf("%s: no ethhook_ metric in %q", q.where, q.expr))
			continue
		}
		labels := map[string]bool{}
		for _, n := range names {
			if seen[n] == nil {
				out = append(out, fmt.Sprintf("%s: metric %s is not in /metrics", q.where, n))
			}
			for l := range seen[n] {
				labels[l] = true
			}
		}
		var used []string
		for _, g := range grouping.FindAllStringSubmatch(q.expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				used = append(used, strings.TrimSpace(l))
			}
		}
		for _, s := range selector.FindAllStringSubmatch(q.expr, -1) {
			for _, m := range matcher.FindAllStringSubmatch(s[2], -1) {
				used = append(used, m[1])
			}
		}
		for _, l := range used {
			if l != "" && !scrapeLabels[l] && !labels[l] {
				out = append(out, fmt.Sprintf("%s: label %s is on none of %v", q.where, l, names))
			}
		}
	}
	sort.Strings(out)
	return out
}

// units are the base-unit suffixes a histogram's name must end in.
var units = []string{"_seconds", "_bytes", "_blocks", "_events"}

// unconventional checks the "# TYPE name type" lines of ethhook_ metrics
// against https://prometheus.io/docs/practices/naming/: a counter ends in
// _total and nothing else does; a histogram names its unit; no name uses
// a non-base unit (milliseconds, kilobytes).
func unconventional(types []string) []string {
	var out []string
	for _, l := range types {
		f := strings.Fields(l) // "#", "TYPE", name, type
		if len(f) != 4 || !strings.HasPrefix(f[2], "ethhook_") {
			continue
		}
		name, typ := f[2], f[3]
		switch {
		case typ == "counter" && !strings.HasSuffix(name, "_total"):
			out = append(out, name+": a counter must end in _total")
		case typ != "counter" && strings.HasSuffix(name, "_total"):
			out = append(out, name+": only counters end in _total")
		case typ == "histogram" && !hasUnit(name):
			out = append(out, name+": a histogram names its unit ("+strings.Join(units, ", ")+")")
		}
		for _, bad := range []string{"_ms", "_milliseconds", "_kb", "_mb", "_percent"} {
			if strings.Contains(name, bad+"_") || strings.HasSuffix(name, bad) {
				out = append(out, name+": use base units, not "+bad)
			}
		}
	}
	return out
}

func hasUnit(name string) bool {
	for _, u := range units {
		if strings.HasSuffix(name, u) {
			return true
		}
	}
	return false
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDashboardAndAlertsQueryRealMetrics runs `ethhook serve --all` on a
// fast devnet (reorgs and rate-limited answers included, so the series
// that only appear after such events exist) with the demo endpoint taking
// webhooks, and checks that every metric and label that a dashboard panel
// or an alert queries is in its /metrics, and that ingest and process
// series of one chain carry the same chain and chain_id labels.
func TestDashboardAndAlertsQueryRealMetrics(t *testing.T) {
	queries := append(dashboardQueries(t), alertQueries(t)...)
	httpAddr, metricsAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"ETHHOOK_LOG_LEVEL":               "error",
		"ETHHOOK_DATABASE_URL":            testenv.PGURL(t),
		"ETHHOOK_REDIS_URL":               testenv.RedisURL(),
		"ETHHOOK_HTTP_ADDR":               httpAddr,
		"ETHHOOK_METRICS_ADDR":            metricsAddr,
		"ETHHOOK_SECRET_KEY":              "c4b1e07a9d3f2865a0e7b9d4c1f38a26e5d07b9c4a1f8e3d62b0c7a95e4d1f38",
		"ETHHOOK_JWT_SECRET":              "f0e9d8c7b6a5948372615a4b3c2d1e0f-test-jwt",
		"ETHHOOK_DEVNET_ADDR":             freeAddr(t),
		"ETHHOOK_DEVNET_DEMO_ADDR":        freeAddr(t),
		"ETHHOOK_DEVNET_BLOCK_TIME":       "200ms",
		"ETHHOOK_DEVNET_LOGS_PER_BLOCK":   "5",
		"ETHHOOK_DEVNET_REORG_EVERY":      "5",
		"ETHHOOK_DEVNET_RATE_LIMIT_EVERY": "7",
		"ETHHOOK_DEVNET_FINALIZED_DEPTH":  "16",
		"ETHHOOK_DEVNET_RETAIN_BLOCKS":    "256",
	}
	_, prefix := testenv.Redis(t)
	env["ETHHOOK_REDIS_PREFIX"] = prefix
	for k, v := range env {
		if v != "" {
			t.Setenv(k, v)
		}
	}
	root := app.NewRoot()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"serve", "--all"})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("serve --all: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("serve --all did not stop within 60s")
		}
	})

	// The run ends when every queried series exists (or after a bound
	// that only a broken build reaches; it is not a timing assertion).
	var gaps []string
	var lines, types []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case err := <-errc:
			t.Fatalf("serve --all stopped: %v", err)
		default:
		}
		// One API request, so ethhook_api_requests_total has a series.
		if resp, err := http.Get("http://" + httpAddr + "/api/v1/applications"); err == nil {
			resp.Body.Close()
		}
		seen, l, ty, err := scrape("http://" + metricsAddr + "/metrics")
		if err == nil {
			lines, types = l, ty
			if gaps = missing(queries, seen); len(gaps) == 0 {
				break
			}
		} else {
			gaps = []string{err.Error()}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes of serve --all, the deploy files query what /metrics lacks:\n%s", strings.Join(gaps, "\n"))
		}
		time.Sleep(time.Second)
	}

	if bad := unconventional(types); len(bad) > 0 {
		t.Errorf("metric names against Prometheus conventions:\n%s", strings.Join(bad, "\n"))
	}

	// Ingest and process name the devnet the same way, so queries join.
	for _, prefix := range []string{"ethhook_ingest_lag_blocks{", "ethhook_ingest_blocks_total{", "ethhook_process_events_total{", "ethhook_process_matches_total{"} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				found = true
				if !strings.Contains(l, `chain="devnet"`) || !strings.Contains(l, `chain_id="31337"`) {
					t.Errorf("series without chain=\"devnet\" and chain_id=\"31337\": %s", l)
				}
			}
		}
		if !found {
			t.Errorf("no %s series", prefix)
		}
	}
}

// TestMissingReportsUnknownMetricsAndLabels: the checker itself finds a
// wrong name, a label no series has in a grouping and in a matcher.
func TestMissingReportsUnknownMetricsAndLabels(t *testing.T) {
	seen := map[string]map[string]bool{"ethhook_a_total": {"chain": true}}
	got := missing([]query{
		{"ok", `sum by (chain) (rate(ethhook_a_total{chain="x"}[5m]))`},
		{"bad name", `rate(ethhook_b_total[5m])`},
		{"bad label", `sum by (chain_id) (ethhook_a_total)`},
		{"bad matcher", `ethhook_a_total{state="x"}`},
	}, seen)
	want := []string{
		"bad label: label chain_id is on none of [ethhook_a_total]",
		"bad matcher: label state is on none of [ethhook_a_total]",
		"bad name: metric ethhook_b_total is not in /metrics",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("missing:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	bad := unconventional([]string{"# TYPE ethhook_x_total counter", "# TYPE ethhook_x counter", "# TYPE ethhook_reorg_depth histogram",
		"# TYPE ethhook_y_total gauge", "# TYPE ethhook_z_seconds histogram", "# TYPE ethhook_lat_ms gauge"})
	if len(bad) != 4 {
		t.Fatalf("unconventional found %d, want 4 (x, reorg_depth, y_total, lat_ms): %v", len(bad), bad)
	}
}
