//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// redisServer is a private redis-server on a free port, so a scenario may
// kill it, restart it empty or with its data, without touching the shared
// Redis on 6379 that other tests use.
type redisServer struct {
	*proc
	port    int
	dataDir string
}

// startRedis starts redis-server. With durable, every write is appended and
// fsynced before it is acknowledged (appendfsync always), so a kill -9 loses
// nothing that was acknowledged: "restarted with its data" means exactly that.
func startRedis(t testing.TB, dir string, durable bool) *redisServer {
	t.Helper()
	return startRedisNamed(t, dir, "redis", durable)
}

// startRedisNamed starts a redis-server called name (its log and data
// directory are named after it) with extra arguments.
func startRedisNamed(t testing.TB, dir, name string, durable bool, extra ...string) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("the fault suite needs redis-server (apt-get install redis-server): %v", err)
	}
	port := freePort(t)
	data := filepath.Join(dir, name+"-data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", data, "--protected-mode", "no"}
	if durable {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, extra...)
	r := &redisServer{proc: &proc{t: t, name: name, path: path, args: args, env: []string{"PATH=" + os.Getenv("PATH")},
		dir: dir, logPath: filepath.Join(dir, name+".log")}, port: port, dataDir: data}
	r.start()
	r.waitUp()
	return r
}

func (r *redisServer) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

func (r *redisServer) waitUp() {
	r.t.Helper()
	err := poll(20*time.Second, 50*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprint(c, "PING\r\n")
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l == "+PONG\r\n"
	})
	if err != nil {
		r.t.Fatalf("redis-server on %d not up: %v\n%s", r.port, err, tail(r.logPath, 20))
	}
}

// configSet runs CONFIG SET param value on the server.
func (r *redisServer) configSet(param, value string) {
	r.t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second)
	if err != nil {
		r.t.Fatalf("redis config set %s: %v", param, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(param), param, len(value), value)
	if l, _ := bufio.NewReader(c).ReadString('\n'); l != "+OK\r\n" {
		r.t.Fatalf("redis config set %s %s: %q", param, value, l)
	}
}

// restart kills redis-server with SIGKILL and starts it again on the same
// port; empty removes its data first.
func (r *redisServer) restart(empty bool) {
	r.kill()
	if empty {
		os.RemoveAll(r.dataDir)
		os.MkdirAll(r.dataDir, 0o755)
	}
	r.start()
	r.waitUp()
}

// pgServer is a private Postgres cluster (initdb in a directory the
// postgres user owns, on a free port), for the scenario that restarts
// Postgres: the machine's shared Postgres is never stopped.
type pgServer struct {
	t      testing.TB
	bin    string
	data   string
	dir    string
	port   int
	logf   string
	dbName string
}

func pgBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) < pgMajor(dirs[j]) })
	if len(dirs) == 0 {
		t.Fatal("no /usr/lib/postgresql/*/bin: cannot start a private Postgres")
	}
	return dirs[len(dirs)-1]
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func startPostgres(t testing.TB) *pgServer {
	t.Helper()
	dir := mkdirFor(t, "postgres")
	p := &pgServer{t: t, bin: pgBin(t), dir: dir, data: filepath.Join(dir, "data"), port: freePort(t),
		logf: filepath.Join(dir, "postgres.log"), dbName: "ethhook_faults"}
	p.asPostgres(60*time.Second, filepath.Join(p.bin, "initdb"), "-D", p.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	t.Cleanup(func() {
		p.ctl(30*time.Second, "stop", "-m", "immediate")
	})
	p.ctl(60*time.Second, "start")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		t.Fatalf("connect to private postgres: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+p.dbName); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return p
}

func (p *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

func (p *pgServer) ctl(d time.Duration, action string, extra ...string) {
	args := append([]string{action, "-D", p.data, "-l", p.logf, "-w", "-t", "60",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", p.port, p.dir)}, extra...)
	p.asPostgres(d, filepath.Join(p.bin, "pg_ctl"), args...)
}

// asPostgres runs a command as the postgres user (initdb and postgres refuse
// to run as root).
func (p *pgServer) asPostgres(d time.Duration, name string, args ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s %v: %v\n%s\n%s", filepath.Base(name), args, err, out, tail(p.logf, 20))
	}
}

// crashRestart stops Postgres the way a crash does (immediate: no
// checkpoint, every connection cut) and starts it again after pause.
func (p *pgServer) crashRestart(pause time.Duration) {
	p.ctl(60*time.Second, "stop", "-m", "immediate")
	time.Sleep(pause)
	p.ctl(60*time.Second, "start")
}
