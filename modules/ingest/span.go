package ingest

// span sizes ranged eth_getLogs requests by the chain's observed log
// density, so that one answer stays near a byte budget whatever the chain:
// a request starts small, grows (at most doubling) while answers are small,
// and shrinks at once on a dense answer, an answer above the read limit or
// a provider's range/size error. A span a provider refused is remembered as
// a ceiling for a while.
type span struct {
	size     uint64  // blocks of the next request
	max      uint64  // max_log_range
	budget   float64 // target answer bytes
	perBlock float64 // estimated answer bytes per block; 0 = unknown

	ceiling      uint64 // smallest span refused recently; 0 = none
	sinceCeiling int
}

// startSpan is the first request's span: one block (it doubles per
// answer while answers stay small).
const startSpan = 1

// ceilingMemory is how many good answers a refused span stays a ceiling.
const ceilingMemory = 64

// answerBudget is the target size of one eth_getLogs answer for a message
// limit: an eighth of it (room for density changes inside one span),
// between 256 KiB and 8 MiB.
func answerBudget(limit int64) int64 {
	return min(max(limit/8, 256<<10), 8<<20)
}

func newSpan(maxRange uint64, budget int64) span {
	return span{size: max(1, min(maxRange, startSpan)), max: max(1, maxRange), budget: float64(budget)}
}

// next is the span of the next request.
func (s *span) next() uint64 { return s.size }

// observe records a good answer for blocks blocks of about bytes bytes and
// sizes the next request from it.
func (s *span) observe(blocks uint64, bytes int64) {
	if blocks == 0 {
		return
	}
	d := float64(bytes) / float64(blocks)
	if s.perBlock == 0 {
		s.perBlock = d
	} else {
		// Up at once, down by halves: a dense stretch must not overshoot.
		s.perBlock = max(d, (s.perBlock+d)/2)
	}
	want := s.max
	if s.perBlock >= 1 {
		want = uint64(min(s.budget/s.perBlock, float64(s.max)))
	}
	want = min(max(want, 1), 2*blocks, s.max)
	if s.ceiling > 0 {
		s.sinceCeiling++
		if s.sinceCeiling > ceilingMemory {
			s.ceiling, s.sinceCeiling = 0, 0
		} else if want >= s.ceiling {
			want = max(1, s.ceiling-1)
		}
	}
	s.size = want
}

// refused records a provider's range/size error for a request of tried
// blocks: halve, and do not ask for that much again for a while.
func (s *span) refused(tried uint64) {
	s.size = max(1, min(s.size, tried)/2)
	if s.ceiling == 0 || tried < s.ceiling {
		s.ceiling = tried
	}
	s.sinceCeiling = 0
}

// tooLarge records an answer for tried blocks that exceeded limit bytes:
// the chain is at least that dense; the next request is sized for it.
func (s *span) tooLarge(tried uint64, limit int64) {
	s.perBlock = max(s.perBlock, float64(limit)/float64(max(tried, 1)))
	s.refused(tried)
	s.size = min(s.size, max(1, uint64(s.budget/s.perBlock)))
}

// failed records a failure that may come from the request's weight (a
// timeout): halve without a ceiling.
func (s *span) failed(tried uint64) {
	s.size = max(1, min(s.size, tried)/2)
}

// approxJSONBytes estimates the size of l in an eth_getLogs answer (keys,
// quantities and punctuation included, slightly over).
func (l *ethLog) approxJSONBytes() int {
	n := 300 + len(l.Address) + len(l.Data) + len(l.BlockHash) + len(l.TxHash)
	for _, t := range l.Topics {
		n += len(t) + 3
	}
	return n
}
