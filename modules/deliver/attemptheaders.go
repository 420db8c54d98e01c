package deliver

import "unicode/utf8"

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
		dst = appendJSONString(dst, h.name)
		dst = append(dst, ':')
		dst = appendJSONString(dst, h.value)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding with HTML escaping
// (its default).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
