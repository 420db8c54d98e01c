package decode

import "testing"

// BenchmarkDecode decodes real logs with the built-in set:
//
//	go test -run '^$' -bench Decode -benchmem ./decode/
func BenchmarkDecode(b *testing.B) {
	for _, tc := range realLogs {
		b.Run(tc.name, func(b *testing.B) {
			l := tc.log
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Builtin().Decode(&l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
