//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one OS process of the suite (a role of the binary, the devnet,
// redis-server): started with its own environment, its output appended to
// its own log file, killed with SIGKILL on purpose or at the end of the test.
//
// With restart set it behaves like an orchestrator (systemd, Kubernetes):
// when it exits on its own, it is started again after a second and the exit
// is counted. A role that gives up on a dead dependency and exits is how the
// binary is meant to be run (DESIGN.md: "the process exits non-zero so the
// orchestrator restarts it"), so the suite restarts it rather than fail.
type proc struct {
	t       testing.TB
	name    string
	path    string // executable
	args    []string
	env     []string
	dir     string // working directory
	logPath string
	restart bool
	// httpAddr, when set, is where the process answers /readyz.
	httpAddr    string
	metricsPort int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool // killed on purpose: do not restart
	exits   int  // exits nobody asked for
	starts  int
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.startLocked(); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// startLocked starts the process; it must not call t (it also runs from the
// restart goroutine, possibly after the test ended).
func (p *proc) startLocked() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	p.starts++
	fmt.Fprintf(f, "=== faults: start #%d of %s at %s: %s %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = p.env, p.dir, f, f
	// Its own process group, and SIGKILL if the test binary dies first, so
	// that nothing outlives the suite even when the cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.stopped = cmd, done, false
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== faults: %s exited at %s: %v\n", p.name, time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		close(done)
		p.mu.Lock()
		again := p.restart && !p.stopped && p.cmd == cmd
		if again {
			p.exits++
		}
		p.mu.Unlock()
		if again {
			time.Sleep(time.Second)
			p.mu.Lock()
			if !p.stopped && p.cmd == cmd {
				_ = p.startLocked()
			}
			p.mu.Unlock()
		}
	}()
	return nil
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *proc) kill() {
	p.mu.Lock()
	p.stopped = true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not exit 10 s after SIGKILL", p.name, cmd.Process.Pid)
	}
}

// running reports whether the process is up now.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) unexpectedExits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exits
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(d time.Duration) {
	p.t.Helper()
	if p.httpAddr == "" {
		return
	}
	err := poll(d, 100*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + p.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		p.t.Fatalf("%s not ready on %s within %s; log tail:\n%s", p.name, p.httpAddr, d, tail(p.logPath, 30))
	}
}

// metric reads one sample of this process's /metrics whose line starts with
// prefix (name and labels), or -1.
func (p *proc) metric(prefix string) float64 {
	if p.metricsPort == 0 {
		return -1
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(p.metricsPort) + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, prefix) {
			if v, err := strconv.ParseFloat(strings.TrimSpace(l[strings.LastIndexByte(l, ' ')+1:]), 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// run runs the binary once to completion (migrate, CLI) and returns stdout.
func run(t testing.TB, env []string, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env, cmd.Dir = env, dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ethhook %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "..."
		}
	}
	return "    " + strings.Join(lines, "\n    ")
}

// Listen ports come from below Linux's ephemeral range (32768-60999 by
// default), where the kernel never picks the source port of an outgoing
// connection: a role restarted on its port must find it free, and a port the
// kernel handed out for ":0" can meanwhile become another connection's
// source port, or be handed out again to the next caller before the first
// one binds it (seen: deliver-2's metrics port was deliver-1's HTTP port).
// No port is handed out twice in one run.
const (
	listenPortMin = 20000
	listenPortMax = 32767
)

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback port that is free now and was not handed out
// before in this run.
func freePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := listenPortMin + rand.IntN(listenPortMax-listenPortMin+1)
		if handedOut.ports[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[port] = true
		return port
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return 0
}

// poll calls ok every interval until it returns true or d passes.
func poll(d, interval time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for {
		if ok() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not true after %s", d)
		}
		time.Sleep(interval)
	}
}

// mkdirFor makes a directory that user (e.g. postgres) owns, outside
// t.TempDir (whose parents only root may enter).
func mkdirFor(t testing.TB, user string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "ethhook-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", user+":", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s %s: %v %s", user, dir, err, out)
	}
	return filepath.Clean(dir)
}
