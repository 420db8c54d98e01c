package ingest

import "testing"

// TestSpanFollowsLogDensity drives the span through sparse, dense and
// refused answers: it starts at one block, at most doubles per answer,
// drops at once to the budget on a dense answer and never returns to a span
// the provider refused until that is forgotten.
func TestSpanFollowsLogDensity(t *testing.T) {
	const budget = 1 << 20
	s := newSpan(1000, budget)
	if s.next() != 1 {
		t.Fatalf("first span %d, want 1", s.next())
	}
	// Empty blocks: doubling up to max_log_range.
	var spans []uint64
	for i := 0; i < 12; i++ {
		n := s.next()
		s.observe(n, 2)
		spans = append(spans, s.next())
	}
	want := []uint64{2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000}
	for i := range want {
		if spans[i] != want[i] {
			t.Fatalf("sparse spans %v, want %v", spans, want)
		}
	}
	// A dense answer (100 KB per block): the next span fits the budget.
	s.observe(1000, 1000*100_000)
	if got := s.next(); got*100_000 > budget || got < 5 {
		t.Fatalf("after a dense answer: span %d (budget %d bytes at 100000 per block)", got, budget)
	}
	// Density falls: the span grows back, never more than doubling.
	prev := s.next()
	s.observe(prev, int64(prev)*10)
	if got := s.next(); got > 2*prev || got <= prev {
		t.Fatalf("after a sparse answer: span %d from %d", got, prev)
	}
	// An answer above the read limit: sized for that density at once.
	s.tooLarge(s.next(), 32<<20)
	if got := s.next(); got > 1 && float64(got)*s.perBlock > budget {
		t.Fatalf("after too large: span %d at %.0f bytes per block", got, s.perBlock)
	}
}

func TestSpanRemembersARefusedSpan(t *testing.T) {
	s := newSpan(1000, 8<<20)
	s.size = 64
	s.refused(64) // e.g. a provider's 10,000-results limit
	if s.next() != 32 {
		t.Fatalf("after refusal: %d, want 32", s.next())
	}
	for i := 0; i < ceilingMemory; i++ {
		s.observe(s.next(), 1000)
		if s.next() >= 64 {
			t.Fatalf("answer %d: span %d reached the refused span 64", i, s.next())
		}
	}
	s.observe(s.next(), 1000)
	s.observe(s.next(), 1000)
	if s.next() < 64 {
		t.Fatalf("refusal never forgotten: span %d", s.next())
	}
	// A timeout halves without a ceiling.
	s.failed(s.next())
	if s.ceiling != 0 {
		t.Fatal("a timeout set a ceiling")
	}
}

func TestAnswerBudgetIsAnEighthOfTheLimitWithinBounds(t *testing.T) {
	for _, c := range []struct{ limit, want int64 }{
		{1 << 20, 256 << 10}, {32 << 20, 4 << 20}, {128 << 20, 8 << 20},
	} {
		if got := answerBudget(c.limit); got != c.want {
			t.Errorf("answerBudget(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}
