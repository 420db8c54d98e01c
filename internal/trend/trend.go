// Package trend decides whether a sampled series keeps growing: the soak's
// pass/fail rule (make soak, faults/soak_test.go), kept free of the soak's
// processes so that the rule itself is tested by `go test ./...`.
//
// A series keeps growing when, after the warm-up, both the whole window and
// its second half have a least-squares slope that is
//   - significant: slope > 3 standard errors of the slope (a flat series
//     with noise almost never gets there; a steady climb always does), and
//   - material: slope x window length > max(Rel x mean of the window, Floor)
//     (a statistically clear but tiny drift, like a few KiB of RSS, is not
//     a leak; Floor is the metric's absolute noise, e.g. 32 MiB of RSS).
//
// Requiring the second half too tells "still growing at the end" from a
// step (a cache filling once, a pool reaching its size) that is flat after.
package trend

import (
	"fmt"
	"math"
)

// Rule is the materiality threshold of one metric.
type Rule struct {
	Rel   float64 // growth over the window, as a fraction of its mean (e.g. 0.10)
	Floor float64 // growth over the window below this is noise, whatever the mean
}

// Fit is one least-squares line through (x, y).
type Fit struct {
	N      int
	Slope  float64 // y per x
	StdErr float64 // standard error of Slope; 0 for a perfect line
	Mean   float64 // mean of y
	Span   float64 // last x - first x
}

// T is the slope in standard errors (+Inf for a perfect rising line).
func (f Fit) T() float64 {
	if f.StdErr == 0 {
		switch {
		case f.Slope > 0:
			return math.Inf(1)
		case f.Slope < 0:
			return math.Inf(-1)
		}
		return 0
	}
	return f.Slope / f.StdErr
}

// Line fits y = a + b x by least squares. It needs at least 3 points.
func Line(x, y []float64) (Fit, error) {
	n := len(x)
	if n != len(y) {
		return Fit{}, fmt.Errorf("trend: %d x values but %d y values", n, len(y))
	}
	if n < 3 {
		return Fit{}, fmt.Errorf("trend: need at least 3 samples, got %d", n)
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	if sxx == 0 {
		return Fit{}, fmt.Errorf("trend: every sample has the same x")
	}
	b := sxy / sxx
	a := my - b*mx
	var sse float64
	for i := range x {
		r := y[i] - (a + b*x[i])
		sse += r * r
	}
	se := math.Sqrt(sse / float64(n-2) / sxx)
	// Rounding leaves a residue on a perfect line; call it perfect.
	if se < 1e-12*math.Max(math.Abs(b), 1) {
		se = 0
	}
	return Fit{N: n, Slope: b, StdErr: se, Mean: my, Span: x[n-1] - x[0]}, nil
}

// Verdict is the rule applied to one series.
type Verdict struct {
	Growing     bool
	Whole, Half Fit
	Reason      string // why it grows, or why not
}

// tSignificant is the slope, in standard errors, above which it is not noise.
const tSignificant = 3

// Growing applies the rule to the samples (x ascending, e.g. seconds since
// the start, already without the warm-up). Fewer than 3 samples (or fewer
// than 6, for the second half) is an error: the rule cannot decide.
func Growing(x, y []float64, r Rule) (Verdict, error) {
	whole, err := Line(x, y)
	if err != nil {
		return Verdict{}, err
	}
	if len(x) < 6 {
		return Verdict{}, fmt.Errorf("trend: need at least 6 samples after the warm-up, got %d", len(x))
	}
	h := len(x) / 2
	half, err := Line(x[h:], y[h:])
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Whole: whole, Half: half}
	limit := math.Max(r.Rel*math.Abs(whole.Mean), r.Floor)
	material := func(f Fit) bool { return f.Slope*whole.Span > limit }
	switch {
	case whole.T() <= tSignificant:
		v.Reason = fmt.Sprintf("flat: slope %.3g/s is %.1f standard errors (needs > %d)", whole.Slope, whole.T(), tSignificant)
	case !material(whole):
		v.Reason = fmt.Sprintf("flat: grows %.3g over the window, under the limit %.3g", whole.Slope*whole.Span, limit)
	case half.T() <= tSignificant || !material(half):
		v.Reason = fmt.Sprintf("levelled off: grew %.3g over the window but the second half's slope %.3g/s is %.1f standard errors (a step, not a climb)",
			whole.Slope*whole.Span, half.Slope, half.T())
	default:
		v.Growing = true
		v.Reason = fmt.Sprintf("keeps growing: %.3g over the window (limit %.3g), slope %.1f standard errors, second half %.1f",
			whole.Slope*whole.Span, limit, whole.T(), half.T())
	}
	return v, nil
}
