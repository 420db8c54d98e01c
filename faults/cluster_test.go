//go:build faults

package faults

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// TestCluster runs the pipeline, split by roles, on a Redis Cluster of 3
// masters with a replica each, and kills -9 the master holding one part of
// the key space mid-load (`make test/cluster`; `make test/faults` does not
// run it). Replication is asynchronous: a write the dead master acknowledged
// but had not yet sent to its replica is lost, so these scenarios allow the
// duplicates of a kill (dup_bound); nothing may be missing.
func TestCluster(t *testing.T) { runScenarios(t, clusterScenarios) }

var clusterScenarios = []scenario{
	// The chain's keys ({31337}): the stream, the cursor, the lease, the
	// dedup keys. Ingest, process and trimming all stop on it.
	{name: "cluster-chain-master", opt: options{redisCluster: true}, load: 25 * time.Second, dupWindow: 3 * time.Second,
		fault: killMasterAt(7*time.Second, "chain", func(c *cluster) string { return hook.ChainTag(chainID) })},
	// The delivery queue ({deliver}:jobs, {deliver}:retries).
	{name: "cluster-deliver-master", opt: options{redisCluster: true}, load: 25 * time.Second, dupWindow: 3 * time.Second,
		fault: killMasterAt(7*time.Second, "deliver", func(c *cluster) string { return "{deliver}" })},
	// The GCRA key of a rate-limited endpoint (deliver:rate:{<endpoint id>}),
	// on a master that holds neither the chain's nor the queue's keys when
	// the endpoints' ids allow it.
	{name: "cluster-rate-master", opt: options{redisCluster: true}, load: 25 * time.Second, dupWindow: 3 * time.Second,
		endpoints: ratedEndpoints,
		fault:     killMasterAt(7*time.Second, "rate", rateTag)},
}

// ratedEndpoints: the standard ones and three taking every Transfer at most
// 100 events/s each (more than the devnet mines: the limit is consulted for
// every webhook, it does not hold them back).
func ratedEndpoints(contract string) []*endpointSpec {
	eps := standardEndpoints(contract)
	for i := range 3 {
		eps = append(eps, &endpointSpec{name: fmt.Sprintf("transfers-rated-%d", i), confirmations: 0, topic0: topicTransfer, rateLimit: 100})
	}
	return eps
}

// rateTag is the hash tag of a rate-limited endpoint's rate key, preferring
// one on a master other than the chain's and the queue's.
func rateTag(c *cluster) string {
	others := map[*redisServer]bool{
		c.rc.masterOf(c.rc.keySlot(hook.ChainTag(chainID))): true,
		c.rc.masterOf(c.rc.keySlot("{deliver}")):            true,
	}
	tag := ""
	for _, e := range c.eps {
		if e.rateLimit == 0 {
			continue
		}
		t := "{" + e.id + "}"
		if tag == "" {
			tag = t
		}
		if !others[c.rc.masterOf(c.rc.keySlot(t))] {
			return t
		}
	}
	return tag
}

// killMasterAt kills -9, at start+at, the master serving the slot of the
// hash tag that tag returns, waits for its replica to be promoted, and
// starts the killed node again as a replica.
func killMasterAt(at time.Duration, what string, tag func(c *cluster) string) func(c *cluster, start time.Time) time.Time {
	return func(c *cluster, start time.Time) time.Time {
		sleepUntil(start, at)
		key := tag(c)
		slot := c.rc.keySlot(key)
		var also []string
		m := c.rc.masterOf(slot)
		for name, k := range map[string]string{"chain": hook.ChainTag(chainID), "deliver": "{deliver}"} {
			if name != what && c.rc.masterOf(c.rc.keySlot(k)) == m {
				also = append(also, name+" "+k)
			}
		}
		killed, promoted, rejoined := c.rc.failover(slot)
		line := fmt.Sprintf("cluster: kill -9 %s (%s, master of slot %d of %s", killed.name, killed.addr(), slot, key)
		if len(also) > 0 {
			line += fmt.Sprintf(", also holding %v", also)
		}
		line += fmt.Sprintf("): replica promoted after %s, killed node back as a replica after %s",
			promoted.Round(100*time.Millisecond), rejoined.Round(100*time.Millisecond))
		fmt.Println(line)
		c.t.Log(line)
		if os.Getenv("FAULTS_DIAG") != "" {
			go diagQueues(c)
		}
		return time.Now()
	}
}

// diagQueues prints, every 2 s for 40 s, the chain stream's and the
// delivery jobs' pending entries (FAULTS_DIAG): what a failover left read
// but unacknowledged.
func diagQueues(c *cluster) {
	port := func(key string) int {
		nodes, err := c.rc.view()
		if err != nil {
			return 0
		}
		s, _ := cli(c.rc.nodes[0].port, "cluster", "keyslot", key)
		slot, _ := strconv.Atoi(s)
		for _, n := range nodes {
			if n.flags["master"] && !n.flags["fail"] && n.owns(slot) {
				return n.port()
			}
		}
		return 0
	}
	events, jobs := "ethhook:"+hook.ChainTag(chainID)+":events", "ethhook:{deliver}:jobs"
	for range 20 {
		ep, jp := port(events), port(jobs)
		if ep == 0 || jp == 0 {
			return
		}
		e, _ := cli(ep, "xpending", events, hook.EventsGroup)
		g, _ := cli(jp, "xinfo", "groups", jobs)
		p, _ := cli(jp, "xpending", jobs, "deliver", "-", "+", "10")
		r, _ := cli(jp, "xrange", jobs, "-", "+", "COUNT", "10")
		flat := func(s string) string { return strings.ReplaceAll(s, "\n", " ") }
		fmt.Printf("diag %s: events pending=%q jobs groups=%q pending=%q entries=%q\n", time.Now().UTC().Format("15:04:05.0"),
			flat(e), flat(g), flat(p), flat(r))
		time.Sleep(2 * time.Second)
	}
}
