//go:build faults && soak

package faults

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"os"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotSoak draws one panel per metric against minutes, with the end of the
// warm-up marked: what the verdict judges is right of that line.
func plotSoak(path string, samples []soakSample, cfg soakConfig) error {
	const mib = 1 << 20
	panels := []struct {
		title, unit string
		get         func(soakSample) float64
	}{
		{"RSS of serve --all", "MiB", func(s soakSample) float64 { return s.rss / mib }},
		{"goroutines of serve --all", "", func(s soakSample) float64 { return s.goroutines }},
		{"database size (pg_database_size)", "MiB", func(s soakSample) float64 { return s.dbSize / mib }},
		{"Redis used_memory", "MiB", func(s soakSample) float64 { return s.redisMem / mib }},
		{"backlog (messages not yet delivered)", "messages", func(s soakSample) float64 { return s.backlog }},
		{"p99 delivery latency (mined -> acknowledged)", "s", func(s soakSample) float64 { return s.p99.Seconds() }},
		{"webhooks acknowledged", "per s", func(s soakSample) float64 { return s.ackRate }},
	}
	rows := make([][]*plot.Plot, len(panels))
	warm := cfg.warmup.Minutes()
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = pn.unit
		p.Y.Min, p.X.Min = 0, 0
		pts := make(plotter.XYs, len(samples))
		top := 0.0
		for j, s := range samples {
			pts[j].X, pts[j].Y = s.elapsed.Minutes(), pn.get(s)
			top = max(top, pts[j].Y)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("%s: %w", pn.title, err)
		}
		l.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
		l.Width = vg.Points(1.5)
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return fmt.Errorf("%s: %w", pn.title, err)
		}
		sc.GlyphStyle.Radius = vg.Points(1.5)
		sc.GlyphStyle.Color = l.Color
		p.Add(plotter.NewGrid(), l, sc)
		if top == 0 {
			top = 1
		}
		p.Y.Max = top * 1.1
		mark, err := plotter.NewLine(plotter.XYs{{X: warm, Y: 0}, {X: warm, Y: p.Y.Max}})
		if err != nil {
			return err
		}
		mark.Color = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
		mark.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(mark)
		rows[i] = []*plot.Plot{p}
	}
	const w, h = 9 * vg.Inch, 2.1 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(panels)))
	dc := draw.New(img)
	// A title line for the whole figure.
	style := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 9), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YTop}
	lines := []string{
		fmt.Sprintf("ethhook soak: serve --all at %d events/s (%d logs every %s) for %s, sampled every %s, judged after the warm-up of %s (dashed line)",
			cfg.rate, cfg.logsPerBlock, cfg.blockTime, cfg.duration, cfg.sample, cfg.warmup),
		"settings: " + strings.Join(cfg.retentionVariablesNames, " "),
	}
	for i, line := range lines {
		dc.FillText(style, vg.Point{X: w / 2, Y: dc.Max.Y - vg.Points(4+12*float64(i))}, line)
	}
	dc.Max.Y -= vg.Points(30)
	t := draw.Tiles{Rows: len(panels), Cols: 1, PadY: vg.Points(6), PadX: vg.Points(6), PadTop: vg.Points(4), PadBottom: vg.Points(4)}
	cv := plot.Align(rows, t, dc)
	for i := range rows {
		rows[i][0].Draw(cv[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readSoakCSV reads a table writeSoakCSV wrote (SOAK_REPLOT: draw the plot
// again, e.g. after changing it, without running the soak again).
func readSoakCSV(path string) ([]soakSample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []soakSample
	for i, r := range rows {
		if i == 0 || len(r) != len(soakHeader) {
			continue
		}
		v := make([]float64, len(r))
		for j, c := range r {
			if v[j], err = strconv.ParseFloat(c, 64); err != nil {
				return nil, fmt.Errorf("%s line %d column %s: %w", path, i+1, soakHeader[j], err)
			}
		}
		out = append(out, soakSample{elapsed: time.Duration(v[0] * float64(time.Second)), rss: v[1], goroutines: v[2], dbSize: v[3],
			redisMem: v[4], backlog: v[5], p99: time.Duration(v[6]) * time.Millisecond, ackRate: v[7], head: uint64(v[8])})
	}
	return out, nil
}
