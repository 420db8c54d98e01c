package trend

import (
	"math"
	"math/rand/v2"
	"testing"
)

// series makes n samples a minute apart (seconds) from f(i) plus noise of
// amplitude amp (a fixed seed: the same draw every run).
func series(n int, amp float64, f func(i int) float64) (x, y []float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		x = append(x, float64(60*i))
		y = append(y, f(i)+amp*(2*rng.Float64()-1))
	}
	return x, y
}

func TestGrowingTellsALeakFromNoiseAStepAndASawtooth(t *testing.T) {
	mib := float64(1 << 20)
	rss := Rule{Rel: 0.10, Floor: 32 * mib}
	cases := []struct {
		name string
		n    int
		amp  float64
		f    func(i int) float64
		want bool
	}{
		{"flat with noise", 50, 20 * mib, func(int) float64 { return 200 * mib }, false},
		{"steady leak of 2 MiB a minute under noise", 50, 20 * mib, func(i int) float64 { return 200*mib + 2*mib*float64(i) }, true},
		{"perfect line", 10, 0, func(i int) float64 { return 100*mib + 10*mib*float64(i) }, true},
		{"step early, flat after (a cache filled once)", 50, 2 * mib, func(i int) float64 {
			if i < 15 {
				return 200 * mib
			}
			return 300 * mib
		}, false},
		{"sawtooth of the garbage collector", 50, 0, func(i int) float64 { return 200*mib + 60*mib*float64(i%5)/4 }, false},
		{"significant drift below the floor", 50, 0.1 * mib, func(i int) float64 { return 200*mib + 0.2*mib*float64(i) }, false},
		{"shrinking", 50, 5 * mib, func(i int) float64 { return 400*mib - 3*mib*float64(i) }, false},
		{"grows late: second half climbs", 50, 2 * mib, func(i int) float64 { return 200*mib + 4*mib*math.Max(0, float64(i-20)) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, y := series(c.n, c.amp, c.f)
			v, err := Growing(x, y, rss)
			if err != nil {
				t.Fatal(err)
			}
			if v.Growing != c.want {
				t.Errorf("Growing = %v, want %v: %s", v.Growing, c.want, v.Reason)
			}
		})
	}
}

func TestGrowingRefusesTooFewSamples(t *testing.T) {
	x, y := series(5, 0, func(i int) float64 { return float64(i) })
	if _, err := Growing(x, y, Rule{}); err == nil {
		t.Fatal("5 samples: want an error, the second half would be 2 points")
	}
	if _, err := Line([]float64{1, 2}, []float64{1, 2}); err == nil {
		t.Fatal("2 points: want an error")
	}
	if _, err := Line([]float64{1, 1, 1}, []float64{1, 2, 3}); err == nil {
		t.Fatal("one x: want an error")
	}
}

func TestLineRecoversSlopeAndMean(t *testing.T) {
	f, err := Line([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7})
	if err != nil {
		t.Fatal(err)
	}
	if f.Slope != 2 || f.Mean != 4 || f.StdErr != 0 || !math.IsInf(f.T(), 1) || f.Span != 3 {
		t.Fatalf("fit = %+v", f)
	}
}
