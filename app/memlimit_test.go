package app

import (
	"io/fs"
	"testing"
)

func TestMemoryLimitFromCgroup(t *testing.T) {
	v2, v1 := cgroupMemoryFiles[0], cgroupMemoryFiles[1]
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if s, ok := m[name]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	for _, c := range []struct {
		name, gomemlimit string
		files            map[string]string
		want             int64
		wantFrom         bool
	}{
		{"GOMEMLIMIT wins", "150MiB", map[string]string{v2: "1073741824\n"}, 0, true},
		{"cgroup v2 limit", "", map[string]string{v2: "1073741824\n"}, 1073741824 / 100 * 90, true},
		{"cgroup v2 no limit", "", map[string]string{v2: "max\n", v1: "1073741824\n"}, 0, false},
		{"cgroup v1 limit", "", map[string]string{v1: "536870912\n"}, 536870912 / 100 * 90, true},
		{"cgroup v1 no limit", "", map[string]string{v1: "9223372036854771712\n"}, 0, false},
		{"no cgroup", "", nil, 0, false},
		{"garbage", "", map[string]string{v2: "lots"}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, from := memoryLimit(c.gomemlimit, files(c.files))
			if got != c.want || (from != "") != c.wantFrom {
				t.Errorf("memoryLimit = %d, %q; want %d (source given: %v)", got, from, c.want, c.wantFrom)
			}
		})
	}
}
