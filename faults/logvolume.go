//go:build faults

package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// logVolume is how many warning and error lines each role wrote during a
// scenario, and which messages they were: the figure behind "an outage
// logs a line when it starts and one when it ends, not one per attempt"
// (issue 12). A role logging every failed call during a 15 s outage writes
// hundreds.
type logVolume struct {
	byRole map[string]int
	top    map[string][]msgCount // per role, most frequent first
}

type msgCount struct {
	msg string
	n   int
}

// maxRole is the role that warned most, and its count.
func (v logVolume) maxRole() (string, int) {
	best, n := "", -1
	for _, r := range sortedKeys(v.byRole) {
		if v.byRole[r] > n {
			best, n = r, v.byRole[r]
		}
	}
	return best, n
}

func (v logVolume) String() string {
	r, n := v.maxRole()
	return fmt.Sprintf("warns=%d(%s)", n, r)
}

// detail lists every role's count and its three most frequent messages.
func (v logVolume) detail() string {
	var b strings.Builder
	for _, r := range sortedKeys(v.byRole) {
		fmt.Fprintf(&b, "%s: %d", r, v.byRole[r])
		for i, m := range v.top[r] {
			if i == 3 {
				break
			}
			fmt.Fprintf(&b, "; %dx %q", m.n, m.msg)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// countWarnings reads every role's JSON log (ETHHOOK_LOG_FORMAT=json).
func (c *cluster) countWarnings() logVolume {
	v := logVolume{byRole: map[string]int{}, top: map[string][]msgCount{}}
	for _, name := range c.order {
		f, err := os.Open(c.roles[name].logPath)
		if err != nil {
			continue
		}
		msgs := map[string]int{}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var l struct{ Level, Msg string }
			if json.Unmarshal(sc.Bytes(), &l) != nil || (l.Level != "warn" && l.Level != "error") {
				continue
			}
			v.byRole[name]++
			msgs[l.Msg]++
		}
		f.Close()
		v.byRole[name] += 0 // a quiet role is listed with 0
		for m, n := range msgs {
			v.top[name] = append(v.top[name], msgCount{m, n})
		}
		sort.Slice(v.top[name], func(i, j int) bool {
			a, b := v.top[name][i], v.top[name][j]
			return a.n > b.n || (a.n == b.n && a.msg < b.msg)
		})
	}
	return v
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
