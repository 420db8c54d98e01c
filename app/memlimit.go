package app

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// memLimitPercent is the share of a container's memory limit that the
// pipeline commands give the Go runtime as its soft memory limit: the GC
// then works harder as the heap nears it instead of letting the heap grow
// to twice the live data (GOGC=100) and the container be killed. The rest
// is for goroutine stacks, runtime metadata and what is not Go heap.
const memLimitPercent = 90

// cgroupMemoryFiles hold the memory limit of this process's cgroup (v2,
// then v1); a test replaces them.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// applyMemoryLimit sets the soft memory limit of a long-running command
// (serve, ingest, deliver, bench). GOMEMLIMIT, when set, wins (the runtime
// has applied it already; GOMEMLIMIT=off disables the limit); otherwise
// the limit is memLimitPercent of the cgroup's memory limit, when the
// process runs under one; otherwise there is none. It returns the limit
// set (0: none set here) and logs it.
func applyMemoryLimit(log *zap.Logger) int64 {
	limit, from := memoryLimit(os.Getenv("GOMEMLIMIT"), os.ReadFile)
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	if log != nil && from != "" {
		log.Info("soft memory limit", zap.Int64("bytes", debug.SetMemoryLimit(-1)), zap.String("from", from))
	}
	return limit
}

// memoryLimit chooses the limit: 0 and where it came from when the
// runtime's own (GOMEMLIMIT) stands, or the cgroup-derived one.
func memoryLimit(gomemlimit string, readFile func(string) ([]byte, error)) (int64, string) {
	if gomemlimit != "" {
		return 0, "GOMEMLIMIT"
	}
	for _, f := range cgroupMemoryFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, ""
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<50 { // cgroup v1 says "no limit" with a huge number
			return 0, ""
		}
		return n / 100 * memLimitPercent, strconv.Itoa(memLimitPercent) + "% of the cgroup memory limit (" + f + ")"
	}
	return 0, ""
}
