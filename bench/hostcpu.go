package bench

import (
	"os"
	"strconv"
	"strings"
)

// hostCPU is CPU time (clock ticks) of the whole machine and of the Redis
// and Postgres server processes, read from /proc. Postgres is shared with
// whatever else runs on the machine, so its figure is an upper bound of
// what the run cost it.
type hostCPU struct {
	busy, total    uint64 // machine-wide, all CPUs
	redis, postgre uint64 // user+system of every redis-server / postgres process
}

func readHostCPU() hostCPU {
	var h hostCPU
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		fs := strings.Fields(line)
		for i, f := range fs[1:] {
			v, _ := strconv.ParseUint(f, 10, 64)
			h.total += v
			if i != 3 && i != 4 { // idle, iowait
				h.busy += v
			}
		}
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		comm := s[open+1 : end]
		fs := strings.Fields(s[end+1:])
		if len(fs) < 13 {
			continue
		}
		ut, _ := strconv.ParseUint(fs[11], 10, 64)
		st, _ := strconv.ParseUint(fs[12], 10, 64)
		switch {
		case strings.HasPrefix(comm, "redis-server"):
			h.redis += ut + st
		case comm == "postgres" || strings.HasPrefix(comm, "postgres"):
			h.postgre += ut + st
		}
	}
	return h
}

// clkTck is USER_HZ, 100 on Linux.
const clkTck = 100

// hostFigures turns two readings into cores used over seconds.
func hostFigures(a, b hostCPU, seconds float64) Host {
	var h Host
	if b.total > a.total {
		h.MachineBusy = float64(b.busy-a.busy) / float64(b.total-a.total)
	}
	h.RedisCores = float64(b.redis-a.redis) / clkTck / seconds
	h.PostgresCores = float64(b.postgre-a.postgre) / clkTck / seconds
	return h
}
