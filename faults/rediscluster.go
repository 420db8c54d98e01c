//go:build faults

package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisCluster is a private Redis Cluster of 3 masters, each with one
// replica, every node a redis-server on a free port, so a scenario may kill
// a master and watch its replica take over.
type redisCluster struct {
	t     testing.TB
	nodes []*redisServer
}

// clusterNodeTimeout is cluster-node-timeout: a master unreachable this long
// is marked failed and its replica starts an election. FAULTS_NODE_TIMEOUT
// sets another (a real cluster's default is 15s): a failover longer than
// deliver's liveness TTL (5 s) makes every deliver process look dead to the
// others.
var clusterNodeTimeout = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FAULTS_NODE_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 2 * time.Second
}()

func startRedisCluster(t testing.TB, dir string) *redisCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("the cluster suite needs redis-cli (apt-get install redis-tools): %v", err)
	}
	rc := &redisCluster{t: t}
	t.Cleanup(rc.kill)
	for i := range 6 {
		rc.nodes = append(rc.nodes, startRedisNamed(t, dir, fmt.Sprintf("redis-%d", i), false,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout/time.Millisecond)),
			// The bus port is the node's port + 10000 unless set: give it a
			// free one of its own, below the ephemeral range like every port.
			"--cluster-port", strconv.Itoa(freePort(t))))
	}
	args := []string{"--cluster", "create"}
	for _, n := range rc.nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	rc.waitHealthy(60 * time.Second)
	return rc
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// url lists every node as a seed: the first in the host, the others as
// ?addr= (rueidis.ParseURL); the client finds the rest with CLUSTER SLOTS.
func (rc *redisCluster) url() string {
	u := "redis://" + rc.nodes[0].addr()
	for i, n := range rc.nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.addr()
	}
	return u
}

// cli runs one redis-cli command against the node on port.
func cli(port int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-p", strconv.Itoa(port)}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, master string
	flags            map[string]bool
	connected        bool
	slots            [][2]int
}

func (n clusterNode) port() int {
	a := n.addr
	if i := strings.IndexByte(a, '@'); i >= 0 {
		a = a[:i]
	}
	p, _ := strconv.Atoi(a[strings.LastIndexByte(a, ':')+1:])
	return p
}

func (n clusterNode) owns(slot int) bool {
	for _, r := range n.slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

func parseClusterNodes(s string) []clusterNode {
	var out []clusterNode
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		n := clusterNode{id: f[0], addr: f[1], master: f[3], flags: map[string]bool{}, connected: f[7] == "connected"}
		for _, fl := range strings.Split(f[2], ",") {
			n.flags[fl] = true
		}
		for _, sl := range f[8:] {
			if strings.HasPrefix(sl, "[") { // a slot being migrated
				continue
			}
			a, b, ok := strings.Cut(sl, "-")
			lo, _ := strconv.Atoi(a)
			hi := lo
			if ok {
				hi, _ = strconv.Atoi(b)
			}
			n.slots = append(n.slots, [2]int{lo, hi})
		}
		out = append(out, n)
	}
	return out
}

// view is CLUSTER NODES as the first running node sees it.
func (rc *redisCluster) view() ([]clusterNode, error) {
	for _, n := range rc.nodes {
		if !n.running() {
			continue
		}
		s, err := cli(n.port, "cluster", "nodes")
		if err != nil {
			continue
		}
		return parseClusterNodes(s), nil
	}
	return nil, fmt.Errorf("no cluster node answers")
}

// healthy: every running node says cluster_state:ok with every slot
// covered, and (with replicas) every master has a replica whose link to it
// is up.
func (rc *redisCluster) healthy(replicas bool) bool {
	for _, n := range rc.nodes {
		if !n.running() {
			continue
		}
		info, err := cli(n.port, "cluster", "info")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return false
		}
		if !replicas {
			continue
		}
		repl, err := cli(n.port, "info", "replication")
		if err != nil || (strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up")) {
			return false
		}
	}
	if !replicas {
		return true
	}
	nodes, err := rc.view()
	if err != nil {
		return false
	}
	masters := 0
	for _, m := range nodes {
		if !m.flags["master"] || len(m.slots) == 0 {
			continue
		}
		masters++
		ok := false
		for _, r := range nodes {
			ok = ok || (r.flags["slave"] && r.master == m.id && !r.flags["fail"] && !r.flags["fail?"] && r.connected)
		}
		if !ok {
			return false
		}
	}
	return masters == 3
}

func (rc *redisCluster) waitHealthy(d time.Duration) {
	rc.t.Helper()
	if err := poll(d, 100*time.Millisecond, func() bool { return rc.healthy(true) }); err != nil {
		v, _ := rc.view()
		rc.t.Fatalf("redis cluster not healthy: %v; nodes: %+v", err, v)
	}
}

// keySlot is CLUSTER KEYSLOT of key.
func (rc *redisCluster) keySlot(key string) int {
	rc.t.Helper()
	s, err := cli(rc.nodes[0].port, "cluster", "keyslot", key)
	n, perr := strconv.Atoi(s)
	if err != nil || perr != nil {
		rc.t.Fatalf("cluster keyslot %s: %v %q", key, err, s)
	}
	return n
}

// masterOf is the node of the master that serves slot now.
func (rc *redisCluster) masterOf(slot int) *redisServer {
	rc.t.Helper()
	nodes, err := rc.view()
	if err != nil {
		rc.t.Fatal(err)
	}
	for _, n := range nodes {
		if n.flags["master"] && !n.flags["fail"] && n.owns(slot) {
			for _, s := range rc.nodes {
				if s.port == n.port() {
					return s
				}
			}
		}
	}
	rc.t.Fatalf("no master serves slot %d: %+v", slot, nodes)
	return nil
}

// failover kills -9 the master serving slot, waits until its replica
// serves the slot and every surviving node says cluster_state:ok, then
// starts the killed node again (with its nodes.conf, without data: it
// rejoins as the new master's replica) and waits until every master has a
// replica again. It returns the killed node, how long the slot had no
// master, and how long until the cluster had replicas again.
func (rc *redisCluster) failover(slot int) (killed *redisServer, promoted, rejoined time.Duration) {
	rc.t.Helper()
	killed = rc.masterOf(slot)
	t0 := time.Now()
	killed.kill()
	err := poll(60*time.Second, 50*time.Millisecond, func() bool {
		if !rc.healthy(false) {
			return false
		}
		nodes, err := rc.view()
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.flags["master"] && !n.flags["fail"] && n.owns(slot) && n.port() != killed.port {
				return true
			}
		}
		return false
	})
	if err != nil {
		v, _ := rc.view()
		rc.t.Fatalf("slot %d: no replica promoted after the kill of %s: %v; nodes: %+v", slot, killed.name, err, v)
	}
	promoted = time.Since(t0)
	killed.start()
	killed.waitUp()
	rc.waitHealthy(60 * time.Second)
	return killed, promoted, time.Since(t0)
}

func (rc *redisCluster) kill() {
	for _, n := range rc.nodes {
		n.kill()
	}
}
