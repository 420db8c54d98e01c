package hook

import "strings"

// scanEvent reads an event body in the shape Event.Fields writes it, by
// hand and in one pass: reading stream entries with encoding/json was a
// fifth of process's CPU per event. It is strict: objects with exactly the
// Event's lower-case field names (any order, each at most once), strings
// of printable ASCII without escapes, unsigned integers without sign,
// fraction, exponent or leading zero that fit in 64 bits, topics as an
// array of at most 4 strings or null, whitespace between tokens. Anything
// else (valid JSON or not) makes it return false and ParseEntry reads the
// body with encoding/json, which stays the reference for what the format
// accepts. It allocates only the topics slice; the strings share body. Its
// work is linear in len(body), with no recursion past the fixed nesting.
func scanEvent(body string, e *Event) bool {
	s := scanner{s: body}
	ok := s.object(func(key string) bool {
		switch key {
		case "id":
			return s.str(&e.ID)
		case "type":
			return s.str(&e.Type)
		case "chain":
			return s.object(func(key string) bool {
				switch key {
				case "id":
					return s.uint(&e.Chain.ID)
				case "name":
					return s.str(&e.Chain.Name)
				}
				return false
			})
		case "block":
			return s.object(func(key string) bool {
				switch key {
				case "number":
					return s.uint(&e.Block.Number)
				case "hash":
					return s.str(&e.Block.Hash)
				case "parent_hash":
					return s.str(&e.Block.ParentHash)
				case "timestamp":
					return s.uint(&e.Block.Timestamp)
				}
				return false
			})
		case "transaction":
			return s.object(func(key string) bool {
				switch key {
				case "hash":
					return s.str(&e.Transaction.Hash)
				case "index":
					return s.uintp(&e.Transaction.Index)
				}
				return false
			})
		case "log":
			return s.object(func(key string) bool {
				switch key {
				case "address":
					return s.str(&e.Log.Address)
				case "topics":
					return s.topics(&e.Log.Topics)
				case "data":
					return s.str(&e.Log.Data)
				case "index":
					return s.uintp(&e.Log.Index)
				}
				return false
			})
		}
		return false
	})
	s.ws()
	return ok && s.i == len(s.s)
}

type scanner struct {
	s string
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.s) {
		switch s.s[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips whitespace and consumes c.
func (s *scanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.s) && s.s[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}, calling field for each key with the
// scanner before its value. A key seen twice refuses the object (the
// fields of one object are few: their names are compared directly).
func (s *scanner) object(field func(key string) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen [8]string
	n := 0
	for {
		var key string
		if !s.str(&key) || !s.next(':') {
			return false
		}
		for _, k := range seen[:n] {
			if k == key {
				return false
			}
		}
		if n == len(seen) || !field(key) {
			return false
		}
		seen[n] = key
		n++
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII with no escapes.
func (s *scanner) str(dst *string) bool {
	if !s.next('"') {
		return false
	}
	start := s.i
	for s.i < len(s.s) {
		c := s.s[s.i]
		if c == '"' {
			*dst = s.s[start:s.i]
			s.i++
			return true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
		s.i++
	}
	return false
}

// uint reads an unsigned integer that fits in 64 bits.
func (s *scanner) uint(dst *uint64) bool {
	s.ws()
	start := s.i
	var v uint64
	for s.i < len(s.s) && s.s[s.i] >= '0' && s.s[s.i] <= '9' {
		d := uint64(s.s[s.i] - '0')
		if v > (1<<64-1-d)/10 {
			return false
		}
		v = v*10 + d
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 1 && s.s[start] == '0' {
		return false
	}
	if s.i < len(s.s) && strings.IndexByte(".eE", s.s[s.i]) >= 0 {
		return false
	}
	*dst = v
	return true
}

func (s *scanner) uintp(dst *uint) bool {
	var v uint64
	if !s.uint(&v) || uint64(uint(v)) != v {
		return false
	}
	*dst = uint(v)
	return true
}

// topics reads null or an array of at most 4 strings (an EVM log's most).
func (s *scanner) topics(dst *[]string) bool {
	s.ws()
	if strings.HasPrefix(s.s[s.i:], "null") {
		s.i += len("null")
		*dst = nil
		return true
	}
	if !s.next('[') {
		return false
	}
	out := make([]string, 0, 4)
	if s.next(']') {
		*dst = out
		return true
	}
	for {
		if len(out) == 4 {
			return false
		}
		var t string
		if !s.str(&t) {
			return false
		}
		out = append(out, t)
		if s.next(']') {
			*dst = out
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}
