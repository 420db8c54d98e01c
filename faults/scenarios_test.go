//go:build faults

package faults

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/modules/devnet"
)

// TestMain builds the binary once; every scenario runs processes of it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ethhook-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "ethhook")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Dir = ".." // the repository root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build ethhook:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// scenario is one fault under load, always ended by the same accounting.
type scenario struct {
	name string
	// knownGap names the open issue this scenario fails on today ("issue N:
	// why"). It is skipped unless FAULTS_ALL=1, and is only set after the
	// scenario was run and seen failing for that reason.
	knownGap string
	opt      options
	// endpoints to create; nil means standardEndpoints.
	endpoints func(contract string) []*endpointSpec
	load      time.Duration // mining time, faults included
	// fault runs during the load (started with it) and returns when the
	// last fault ended; lateness counts from then at the earliest.
	fault func(c *cluster, start time.Time) time.Time
	// dupWindow bounds duplicates: at most the webhooks acknowledged in this
	// long at the scenario's average rate (a kill loses the results of
	// what was in flight; nothing else may deliver twice).
	dupWindow time.Duration
	drain     time.Duration // how long the pipeline may take to drain after the load
	// warnBound, when set, bounds the warning and error lines of the role
	// that wrote most (an outage logs its start and its end, not every
	// failed call; logvolume.go).
	warnBound int
}

// sleepUntil waits until start+d.
func sleepUntil(start time.Time, d time.Duration) {
	if w := time.Until(start.Add(d)); w > 0 {
		time.Sleep(w)
	}
}

// killAt kills the role chosen by pick at start+at and restarts it after down.
func killAt(at, down time.Duration, pick func(c *cluster) *proc) func(c *cluster, start time.Time) time.Time {
	return func(c *cluster, start time.Time) time.Time {
		sleepUntil(start, at)
		c.killAndRestart(pick(c), down)
		return time.Now()
	}
}

func role(name string) func(c *cluster) *proc { return func(c *cluster) *proc { return c.roles[name] } }

// every calls f at start+from, then every period until start+until.
func every(from, period, until time.Duration, f func(c *cluster, i int)) func(c *cluster, start time.Time) time.Time {
	return func(c *cluster, start time.Time) time.Time {
		for i, at := 0, from; at <= until; i, at = i+1, at+period {
			sleepUntil(start, at)
			f(c, i)
		}
		return time.Now()
	}
}

// terminateBackends cuts every Postgres connection of the scenario database
// but the test's own (pg_terminate_backend).
func terminateBackends(c *cluster) int {
	var n int
	err := c.pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
		AND application_name NOT LIKE 'faults-suite%'`).Scan(&n)
	if err != nil {
		c.t.Logf("terminate backends: %v", err)
	}
	return n
}

var scenarios = []scenario{
	{name: "baseline", load: 15 * time.Second},
	{name: "kill-ingest-leader", load: 20 * time.Second,
		fault: killAt(7*time.Second, 3*time.Second, func(c *cluster) *proc { return c.ingestLeader() })},
	{name: "kill-process", load: 20 * time.Second, dupWindow: 0,
		fault: killAt(7*time.Second, 3*time.Second, role("process"))},
	{name: "kill-deliver-1", load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: killAt(7*time.Second, 3*time.Second, role("deliver-1"))},
	{name: "kill-deliver-2", load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: killAt(7*time.Second, 3*time.Second, role("deliver-2"))},
	{name: "kill-serve-all", opt: options{all: true}, load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: killAt(7*time.Second, 2*time.Second, role("all"))},
	// Redis back empty with ingest configured as shipped (no start_block):
	// the stream, the cursor and the delivery jobs are gone; Postgres has
	// the messages and (DESIGN.md) the chain cursor must survive too.
	{name: "redis-restart-empty", opt: options{startAtHead: true}, load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.redis.restart(true)
			return time.Now()
		}},
	// Redis back empty while ingest is down too (a machine restart): the
	// ingest processes start on an empty Redis, with no cursor there.
	{name: "redis-empty-ingest-restart", opt: options{startAtHead: true}, load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.roles["ingest-a"].kill()
			c.roles["ingest-b"].kill()
			c.redis.restart(true)
			time.Sleep(2 * time.Second)
			c.roles["ingest-a"].start()
			c.roles["ingest-b"].start()
			return time.Now()
		}},
	// The same with start_block set: ingest, finding no cursor, goes back
	// to block 1 and the per-block dedup in Postgres' unique keys absorbs
	// the replay.
	{name: "redis-restart-empty-start-block", load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.redis.restart(true)
			return time.Now()
		}},
	{name: "redis-restart-data", opt: options{durableRedis: true}, load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.redis.restart(false)
			return time.Now()
		}},
	// Redis down for 15 s (a slow failover, a restart for an upgrade), back
	// with its data: longer than ingest's lease and deliver's heartbeat,
	// so every role must ride out an outage, not a blip.
	{name: "redis-down-15s", opt: options{durableRedis: true}, load: 30 * time.Second, dupWindow: 3 * time.Second, warnBound: 10,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.redis.kill()
			time.Sleep(15 * time.Second)
			c.redis.start()
			c.redis.waitUp()
			return time.Now()
		}},
	// Redis full for 10 s (maxmemory reached with noeviction, as README
	// asks): every write fails with OOM while reads still work.
	{name: "redis-full", load: 25 * time.Second, dupWindow: 3 * time.Second, warnBound: 10,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.redis.configSet("maxmemory", "1")
			time.Sleep(10 * time.Second)
			c.redis.configSet("maxmemory", "0")
			return time.Now()
		}},
	// Postgres down for 15 s, not a quick crash and restart.
	{name: "postgres-down-15s", opt: options{privatePG: true}, load: 30 * time.Second, dupWindow: 3 * time.Second, warnBound: 10,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.pg.crashRestart(15 * time.Second)
			return time.Now()
		}},
	{name: "postgres-restart", opt: options{privatePG: true}, load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			c.pg.crashRestart(3 * time.Second)
			return time.Now()
		}},
	{name: "postgres-terminate", load: 20 * time.Second, dupWindow: 3 * time.Second,
		fault: every(5*time.Second, 4*time.Second, 13*time.Second, func(c *cluster, i int) { terminateBackends(c) })},
	{name: "rpc-drop", load: 20 * time.Second,
		fault: every(3*time.Second, 3*time.Second, 15*time.Second, func(c *cluster, i int) { c.devnet.control("drop", "") })},
	{name: "rpc-stall", load: 20 * time.Second,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 5*time.Second)
			c.devnet.control("stall", `{"ms":5000}`)
			sleepUntil(start, 13*time.Second)
			c.devnet.control("stall", `{"ms":3000}`)
			return time.Now().Add(3 * time.Second)
		}},
	{name: "reorg-1-to-10", load: 25 * time.Second, endpoints: reorgEndpoints,
		fault: every(4*time.Second, 1500*time.Millisecond, 18*time.Second, func(c *cluster, i int) {
			c.devnet.control("reorg", fmt.Sprintf(`{"depth":%d}`, i+1))
		})},
	{name: "head-skip", load: 20 * time.Second,
		fault: every(5*time.Second, 5*time.Second, 15*time.Second, func(c *cluster, i int) {
			c.devnet.control("skip", fmt.Sprintf(`{"n":%d}`, 10+20*i))
		})},
	{name: "receivers-flaky", load: 25 * time.Second, endpoints: flakyEndpoints,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 6*time.Second)
			e := c.ep("approvals-toggled")
			c.endpointCmd("disable", e)
			sleepUntil(start, 12*time.Second)
			c.endpointCmd("enable", e)
			h, _ := c.devnet.head()
			e.enabledHead, e.toggled = h.Number, true
			return time.Now()
		}},
	{name: "endpoint-deleted", load: 20 * time.Second, endpoints: deleteEndpoints,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 7*time.Second)
			e := c.ep("doomed")
			c.endpointCmd("delete", e)
			e.deletedAt = time.Now()
			return time.Now()
		}},
	// An endpoint created with --from-block (the scenario's first block)
	// while live load runs: the standard accounting demands every matching
	// canonical event of the whole run, the history range included.
	{name: "history-while-live", load: 25 * time.Second, dupWindow: 3 * time.Second,
		fault: func(c *cluster, start time.Time) time.Time {
			sleepUntil(start, 10*time.Second)
			from := c.firstBlock
			c.createEndpoint(&endpointSpec{name: "history-transfers", confirmations: 0, topic0: topicTransfer, fromBlock: &from})
			return time.Now()
		}},
	{name: "hot-endpoint", load: 10 * time.Second, endpoints: hotEndpoints,
		opt: options{blockTime: 100 * time.Millisecond, logsPerBlock: 200}, drain: 90 * time.Second},
}

// reorgEndpoints: reorgs go up to 10 blocks deep, so the endpoints with
// confirmations have more than 10 (fewer may rightly see an orphan).
func reorgEndpoints(contract string) []*endpointSpec {
	return []*endpointSpec{
		{name: "transfers-c0", confirmations: 0, topic0: topicTransfer},
		{name: "transfers-c11", confirmations: 11, topic0: topicTransfer},
		{name: "contract-c12", confirmations: 12, address: contract},
		{name: "contract-c0", confirmations: 0, address: contract},
	}
}

func flakyEndpoints(contract string) []*endpointSpec {
	return []*endpointSpec{
		{name: "transfers-ok", confirmations: 1, topic0: topicTransfer},
		{name: "transfers-fail20", confirmations: 0, topic0: topicTransfer, policy: fail20},
		{name: "contract-hang", confirmations: 2, address: contract, policy: hangSome},
		{name: "transfers-410", confirmations: 0, topic0: topicTransfer, policy: gone410After, goes410: true},
		{name: "approvals-toggled", confirmations: 0, topic0: topicApproval},
	}
}

func deleteEndpoints(contract string) []*endpointSpec {
	eps := standardEndpoints(contract)
	// Every log, one attempt in five held past the timeout: plenty in
	// flight and in retry when it is deleted.
	return append(eps, &endpointSpec{name: "doomed", confirmations: 0, policy: hangSome})
}

// hotEndpoints: one endpoint taking every log (the devnet mines 2,000
// logs/s in this scenario) beside 100 quiet ones, each taking the rare
// small Transfers of one token.
func hotEndpoints(contract string) []*endpointSpec {
	eps := []*endpointSpec{{name: "hot", confirmations: 0}}
	tokens := devnetContracts()[:4]
	for i := range 100 {
		eps = append(eps, &endpointSpec{name: fmt.Sprintf("quiet-%03d", i), confirmations: 1, topic0: topicTransfer,
			address: tokens[i%len(tokens)], valueBelow: big.NewInt(10_000)})
	}
	return eps
}

const devnetSeed = 17

// devnetContracts are the contracts the suite's devnet emits logs from
// (tokens first): the same seed gives the same world.
func devnetContracts() []string {
	var out []string
	for _, a := range devnet.New(devnet.Config{Seed: devnetSeed}).Contracts() {
		out = append(out, strings.ToLower(a.Hex()))
	}
	return out
}

func (c *cluster) ep(name string) *endpointSpec {
	for _, e := range c.eps {
		if e.name == name {
			return e
		}
	}
	c.t.Fatalf("no endpoint %s", name)
	return nil
}

// TestFaults runs every scenario, one at a time, each on its own cluster.
func TestFaults(t *testing.T) { runScenarios(t, scenarios) }

// runScenarios runs scs one at a time, skipping known gaps unless
// FAULTS_ALL=1.
func runScenarios(t *testing.T, scs []scenario) {
	all := os.Getenv("FAULTS_ALL") == "1"
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) {
			if sc.knownGap != "" && !all {
				fmt.Printf("faults: %-22s SKIPPED known gap: %s (FAULTS_ALL=1 runs it)\n", sc.name, sc.knownGap)
				t.Skipf("known gap: %s", sc.knownGap)
			}
			runScenario(t, sc)
		})
	}
}

func runScenario(t *testing.T, sc scenario) {
	began := time.Now()
	c := newCluster(t, sc.opt)
	mk := sc.endpoints
	if mk == nil {
		mk = standardEndpoints
	}
	// The fourth contract is a token (Transfer and Approval logs).
	for _, e := range mk(devnetContracts()[3]) {
		c.createEndpoint(e)
	}
	c.startRoles()

	start := time.Now()
	c.devnet.control("resume", "")
	var faultEnd time.Time
	if sc.fault != nil {
		faultEnd = sc.fault(c, start)
	}
	sleepUntil(start, sc.load)
	tr := c.readTruth()
	loadTime := time.Since(start)
	drain := sc.drain
	if drain == 0 {
		drain = 90 * time.Second
	}
	tl := c.drain(tr, faultEnd, drain)

	od := c.retryOverdue()
	bound := int(math.Ceil(float64(tl.delivered) / loadTime.Seconds() * sc.dupWindow.Seconds()))
	lv := c.countWarnings()
	line := fmt.Sprintf("faults: %-22s %s retry_overdue=%.1fs dup_bound=%d blocks=%d exits=%d %s took=%s", sc.name, tl, od.by.Seconds(),
		bound, tr.head, c.exits(), lv, time.Since(began).Round(time.Second))
	if sc.knownGap != "" {
		line += " (known gap: " + sc.knownGap + ")"
	}
	fmt.Println(line)
	t.Logf("latest: %s", tl.lateOf)
	if od.about != "" {
		t.Logf("most overdue retry: %s", od.about)
	}
	if os.Getenv("FAULTS_DIAG") != "" && tl.lateID != "" {
		c.diagMessage(tl.lateEP, tl.lateID)
	}
	t.Logf("warning and error lines per role:\n%s", lv.detail())
	if tl.violations() > 0 || tl.dup > bound {
		t.Errorf("%s\n  e.g.:\n    %s", line, strings.Join(tl.examples, "\n    "))
	}
	if r, n := lv.maxRole(); sc.warnBound > 0 && n > sc.warnBound {
		t.Errorf("%s: %s wrote %d warning and error lines, more than %d: a fault logs its start and its end, not each failed call\n%s",
			sc.name, r, n, sc.warnBound, lv.detail())
	}
	if tl.expected == 0 {
		t.Errorf("%s: nothing expected: the scenario proves nothing", sc.name)
	}
}

// diagMessage prints the history of one event's message (FAULTS_DIAG).
func (c *cluster) diagMessage(endpointID, eventID string) {
	ctx := context.Background()
	var id, state string
	var created, updated time.Time
	var attempts int
	if err := c.pool.QueryRow(ctx, `SELECT m.id, s.state, s.attempts, m.created_at, s.updated_at FROM messages m JOIN message_states s ON s.id = m.id
		WHERE m.endpoint_id = $1 AND m.event_id = $2`, endpointID, eventID).Scan(&id, &state, &attempts, &created, &updated); err != nil {
		fmt.Printf("diag: message of %s: %v\n", eventID, err)
		return
	}
	fmt.Printf("diag: message %s state=%s attempts=%d created=%s updated=%s\n", id, state, attempts,
		created.UTC().Format("15:04:05.000"), updated.UTC().Format("15:04:05.000"))
	rows, err := c.pool.Query(ctx, `SELECT attempt, coalesce(status_code, 0), error, created_at FROM delivery_history WHERE message_id = $1 ORDER BY id`, id)
	if err != nil {
		return
	}
	for rows.Next() {
		var a, code int
		var e string
		var at time.Time
		if rows.Scan(&a, &code, &e, &at) == nil {
			fmt.Printf("diag:   attempt %d status %d %q at %s\n", a, code, e, at.UTC().Format("15:04:05.000"))
		}
	}
	rows.Close()
	// Messages whose first attempt came 10 s or more after they were
	// created, per endpoint: one burst or a few strays.
	rows, err = c.pool.Query(ctx, `SELECT e.url, count(*), min(m.created_at), max(m.created_at)
		FROM messages m JOIN endpoints e ON e.id = m.endpoint_id
		JOIN delivery_history h ON h.message_id = m.id AND h.attempt = 1
		WHERE h.created_at > m.created_at + interval '10 seconds' GROUP BY e.url`)
	if err != nil {
		fmt.Printf("diag: late messages: %v\n", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var url string
		var n int
		var lo, hi time.Time
		if rows.Scan(&url, &n, &lo, &hi) == nil {
			fmt.Printf("diag: %d messages of %s first attempted 10 s or more after their creation (created %s to %s)\n",
				n, url, lo.UTC().Format("15:04:05.000"), hi.UTC().Format("15:04:05.000"))
		}
	}
}
