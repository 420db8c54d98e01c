//go:build faults

package faults

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/testenv"
)

// binPath is the ethhook binary TestMain builds once.
var binPath string

const chainID = config.DevnetChainID

// options shape one scenario's cluster.
type options struct {
	// all runs one `serve --all` instead of the split roles.
	all bool
	// Devnet load: block time and logs per block (fixed, so the rate is known).
	blockTime    time.Duration
	logsPerBlock int
	// durableRedis makes Redis fsync every write (appendonly, always).
	durableRedis bool
	// privatePG runs a private Postgres cluster the scenario may restart.
	privatePG bool
	// startAtHead leaves the chain's start_block unset, as shipped: ingest
	// with no cursor starts at the current head, so only blocks after the
	// setup are expected. Otherwise ingest starts at block 1 and backfills.
	startAtHead bool
	// redisCluster runs a Redis Cluster of 3 masters with a replica each
	// (c.rc) instead of the single private redis-server (c.redis).
	redisCluster bool
	// env adds or overrides settings of every role.
	env map[string]string
}

// cluster is one scenario's world: a devnet process, a private Redis, a
// scenario database, the roles of the binary, and the receiver.
type cluster struct {
	t     *testing.T
	dir   string
	opt   options
	cfg   string // YAML config file every process reads
	env   []string
	pgURL string
	pg    *pgServer // only with privatePG
	pool  *pgxpool.Pool

	devnetProc *proc
	devnet     *devnetClient
	redis      *redisServer
	rc         *redisCluster // only with redisCluster
	recv       *receiver
	roles      map[string]*proc
	order      []string // role names in start order
	appID      string
	eps        []*endpointSpec
	firstBlock uint64 // the first block the ground truth holds
}

// The settings every role gets. The delivery timeout is short so that the
// hanging receiver times out quickly; the retry schedule is fast so that a
// failed webhook is retried within the scenario instead of in 5 minutes.
// Everything else keeps the shipped defaults (the lease of a message a dead
// deliver process held is the default 60 s).
var baseSettings = map[string]string{
	"ETHHOOK_LOG_FORMAT":              "json",
	"ETHHOOK_LOG_LEVEL":               "info",
	"ETHHOOK_DELIVERY_TIMEOUT":        "2s",
	"ETHHOOK_DELIVERY_RETRY_SCHEDULE": "0s,1s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s",
	"ETHHOOK_SHUTDOWN_GRACE":          "5s",
	"ETHHOOK_DEVNET_DEMO_ADDR":        "",
}

func newCluster(t *testing.T, opt options) *cluster {
	t.Helper()
	if opt.blockTime == 0 {
		opt.blockTime = 150 * time.Millisecond
	}
	if opt.logsPerBlock == 0 {
		opt.logsPerBlock = 6
	}
	c := &cluster{t: t, dir: t.TempDir(), opt: opt, roles: map[string]*proc{}}
	// Registered first, so it runs last: every process is killed however
	// the test ends, after the log tails are printed.
	t.Cleanup(c.killAll)
	t.Cleanup(c.keepLogs)
	t.Cleanup(func() {
		if t.Failed() {
			c.printTails()
		}
	})

	c.recv = newReceiver(t, 3*time.Second)
	redisURL := ""
	if opt.redisCluster {
		c.rc = startRedisCluster(t, c.dir)
		redisURL = c.rc.url()
	} else {
		c.redis = startRedis(t, c.dir, opt.durableRedis)
		redisURL = c.redis.url()
	}
	if opt.privatePG {
		c.pg = startPostgres(t)
		c.pgURL = c.pg.url(c.pg.dbName)
	} else {
		c.pgURL = testenv.PGURL(t) // cloned from the migrated template
	}
	c.startDevnet()

	settings := map[string]string{}
	for k, v := range baseSettings {
		settings[k] = v
	}
	// Fresh secrets per scenario: serve refuses well-known ones.
	settings["ETHHOOK_SECRET_KEY"] = randomHex(32)
	settings["ETHHOOK_JWT_SECRET"] = randomHex(32)
	settings["ETHHOOK_DATABASE_URL"] = c.pgURL
	settings["ETHHOOK_REDIS_URL"] = redisURL
	// Only the receiver's address may be a private target; every other
	// loopback port (Postgres, Redis, the roles) stays refused.
	settings["ETHHOOK_DELIVERY_ALLOW_CIDRS"] = c.recv.addr()
	for k, v := range opt.env {
		settings[k] = v
	}
	c.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir}
	for k, v := range settings {
		c.env = append(c.env, k+"="+v)
	}
	c.writeConfig()

	// The template database is migrated already; `migrate up` is cheap then
	// and needed on a private Postgres.
	run(t, c.env, c.dir, "--config", c.cfg, "migrate", "up")
	pcfg, err := pgxpool.ParseConfig(c.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	// Named, so that the connection-termination fault spares the suite's own.
	pcfg.MaxConns = 4
	pcfg.ConnConfig.RuntimeParams["application_name"] = "faults-suite"
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c.pool = pool
	// A plan without quota, endpoint or rate caps: the suite tests faults,
	// not billing (the free plan caps an endpoint at 10 events/s).
	if _, err := pool.Exec(context.Background(), `INSERT INTO plans (id, name, monthly_quota, max_endpoints, rate_limit)
		VALUES ('faults', 'Faults', 1000000000000, 10000, 0)`); err != nil {
		t.Fatalf("create plan: %v", err)
	}
	var app struct {
		ID string `json:"id"`
	}
	out := run(t, c.env, c.dir, "--config", c.cfg, "app", "create", "--name", "faults", "--plan", "faults", "--json")
	if err := json.Unmarshal(out, &app); err != nil || app.ID == "" {
		t.Fatalf("app create: %v %s", err, out)
	}
	c.appID = app.ID
	return c
}

// startDevnet runs `ethhook devnet` as its own process, paused at once:
// endpoints and roles are set up before the load starts. Ingest reads from
// block 1 (start_block), so the blocks mined before the pause are backfilled.
func (c *cluster) startDevnet() {
	port := freePort(c.t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := &proc{t: c.t, name: "devnet", path: binPath, dir: c.dir, logPath: filepath.Join(c.dir, "devnet.log"),
		env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir, "ETHHOOK_LOG_FORMAT=json"},
		args: []string{"devnet", "--addr", addr, "--seed", "17", "--block-time", c.opt.blockTime.String(),
			"--logs-per-block", strconv.Itoa(c.opt.logsPerBlock), "--fixed-logs"}}
	p.start()
	c.devnetProc = p
	c.roles["devnet"] = p
	c.devnet = newDevnetClient(c.t, "http://"+addr)
	if err := poll(20*time.Second, 20*time.Millisecond, func() bool { _, err := c.devnet.head(); return err == nil }); err != nil {
		c.t.Fatalf("devnet not up: %v\n%s", err, tail(p.logPath, 20))
	}
	h := c.devnet.control("pause", "")["head"].(map[string]any)
	c.firstBlock = 1
	if c.opt.startAtHead {
		// Ingest starts at the head it first sees: this one, or the next.
		c.firstBlock = uint64(h["number"].(float64)) + 1
	}
	c.devnet.watch()
}

func (c *cluster) writeConfig() {
	addr := strings.TrimPrefix(c.devnet.base, "http://")
	yaml := fmt.Sprintf(`chains:
  - name: devnet
    id: %d
    ws_urls: [ws://%s/]
    http_url: http://%s/
    block_time: %s
    confirmations: 0
`, chainID, addr, addr, c.opt.blockTime)
	if !c.opt.startAtHead {
		yaml += "    start_block: 1\n"
	}
	c.cfg = filepath.Join(c.dir, "ethhook.yaml")
	if err := os.WriteFile(c.cfg, []byte(yaml), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// addRole defines (and starts) one role process: args after the binary.
func (c *cluster) addRole(name string, args ...string) *proc {
	c.t.Helper()
	httpPort, metricsPort := freePort(c.t), freePort(c.t)
	env := append(append([]string{}, c.env...),
		"ETHHOOK_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(httpPort),
		"ETHHOOK_METRICS_PORT="+strconv.Itoa(metricsPort),
		// A stable consumer name per process: after a restart it finishes
		// its own unacknowledged stream entries first.
		"ETHHOOK_PROCESS_CONSUMER="+name)
	p := &proc{t: c.t, name: name, path: binPath, args: append([]string{"--config", c.cfg}, args...), env: env,
		dir: c.dir, logPath: filepath.Join(c.dir, name+".log"), restart: true,
		httpAddr: "127.0.0.1:" + strconv.Itoa(httpPort), metricsPort: metricsPort}
	c.roles[name] = p
	c.order = append(c.order, name)
	p.start()
	return p
}

// startRoles starts the pipeline: either one `serve --all`, or every role in
// its own process with a hot-standby ingest and two deliver processes.
func (c *cluster) startRoles() {
	c.t.Helper()
	if c.opt.all {
		c.addRole("all", "serve", "--all")
	} else {
		c.addRole("ingest-a", "ingest")
		c.addRole("ingest-b", "ingest")
		c.addRole("process", "serve", "--modules=process")
		c.addRole("deliver-1", "deliver")
		c.addRole("deliver-2", "deliver")
	}
	for _, n := range c.order {
		c.roles[n].waitReady(60 * time.Second)
	}
}

// ingestLeader is the ingest process that holds the chain's writer lease.
func (c *cluster) ingestLeader() *proc {
	c.t.Helper()
	var leader *proc
	err := poll(20*time.Second, 200*time.Millisecond, func() bool {
		for _, n := range []string{"ingest-a", "ingest-b"} {
			if p := c.roles[n]; p != nil && p.metric(`ethhook_ingest_lease_holder{chain="devnet",chain_id="31337"}`) == 1 {
				leader = p
				return true
			}
		}
		return false
	})
	if err != nil {
		c.t.Fatalf("no ingest process holds the devnet lease")
	}
	return leader
}

// restartKilled kills p with SIGKILL, waits, and starts it again.
func (c *cluster) killAndRestart(p *proc, down time.Duration) {
	c.t.Logf("kill -9 %s", p.name)
	p.kill()
	time.Sleep(down)
	p.start()
}

func (c *cluster) exits() int {
	n := 0
	for _, name := range c.order {
		n += c.roles[name].unexpectedExits()
	}
	return n
}

func (c *cluster) killAll() {
	for _, p := range c.roles {
		p.kill()
	}
	if c.redis != nil {
		c.redis.kill()
	}
	if c.rc != nil {
		c.rc.kill()
	}
}

func (c *cluster) printTails() {
	for _, name := range append([]string{"devnet"}, c.order...) {
		p := c.roles[name]
		c.t.Logf("--- %s log tail (%s):\n%s", name, p.logPath, tail(p.logPath, 25))
	}
	if c.redis != nil {
		c.t.Logf("--- redis log tail:\n%s", tail(c.redis.logPath, 10))
	}
	if c.rc != nil {
		for _, n := range c.rc.nodes {
			c.t.Logf("--- %s log tail:\n%s", n.name, tail(n.logPath, 10))
		}
	}
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", b)
}

// keepLogs copies every process's log to $FAULTS_LOGS/<test name>/ when
// that is set (the scenario's own directory is removed with the test).
func (c *cluster) keepLogs() {
	root := os.Getenv("FAULTS_LOGS")
	if root == "" {
		return
	}
	dst := filepath.Join(root, strings.ReplaceAll(c.t.Name(), "/", "_"))
	logs, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		c.t.Logf("keep logs: %v", err)
		return
	}
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			_ = os.WriteFile(filepath.Join(dst, filepath.Base(l)), b, 0o644)
		}
	}
	c.t.Logf("logs kept in %s", dst)
}
