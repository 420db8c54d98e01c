package deliver

import "github.com/ethhook/ethhook/internal/jsonw"

// header is one request or response header as the attempt log stores it
// (lower-case name, value as sent or masked).
type header struct{ name, value string }

// appendHeadersJSON appends hs, sorted by name with no name twice, as a
// JSON object: byte for byte what encoding/json writes for the same
// map[string]string (keys sorted, HTML characters, U+2028/U+2029 and
// control characters escaped, invalid UTF-8 as U+FFFD), without its
// reflection, map sort and allocations on every attempt row.
func appendHeadersJSON(dst []byte, hs []header) []byte {
	dst = append(dst, '{')
	for i, h := range hs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonw.AppendString(dst, h.name)
		dst = append(dst, ':')
		dst = jsonw.AppendString(dst, h.value)
	}
	return append(dst, '}')
}
