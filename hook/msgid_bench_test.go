package hook

import (
	"strings"
	"testing"
	"time"
)

func BenchmarkMessageID(b *testing.B) {
	now := time.Now()
	ep, ev := "ep_01J0000000000000000000000", "31337:0x"+strings.Repeat("ab", 32)+":7"
	b.ReportAllocs()
	for b.Loop() {
		_ = MessageID(ep, ev, TypeLog, now, now)
	}
}
