package tui

import (
	"math"
	"strings"
	"time"
)

// sparkBars are the eight levels of a sparkline, lowest first.
var sparkBars = []rune("▁▂▃▄▅▆▇█")

// sparkline draws values scaled to their maximum, one bar per value; an
// all-zero series is a flat line.
func sparkline(values []float64) string {
	peak := 0.0
	for _, v := range values {
		peak = math.Max(peak, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := 0
		if peak > 0 {
			i = int(math.Round(v / peak * float64(len(sparkBars)-1)))
		}
		b.WriteRune(sparkBars[min(max(i, 0), len(sparkBars)-1)])
	}
	return b.String()
}

// rateSampler turns samples of a monotonic counter into per-minute rates,
// keeping the newest max of them.
type rateSampler struct {
	max     int
	rates   []float64
	last    uint64
	lastAt  time.Time
	started time.Time // the daemon's start; a new one resets the baseline
	have    bool
}

// add records the counter's value at time at. A counter that went backwards
// or a restarted daemon only sets a new baseline.
func (r *rateSampler) add(count uint64, at, started time.Time) {
	if r.have && count >= r.last && at.After(r.lastAt) && started.Equal(r.started) {
		perMin := float64(count-r.last) / at.Sub(r.lastAt).Minutes()
		r.rates = append(r.rates, perMin)
		if len(r.rates) > r.max {
			r.rates = r.rates[len(r.rates)-r.max:]
		}
	}
	r.last, r.lastAt, r.started, r.have = count, at, started, true
}

// current is the newest rate, or 0 before there are two samples.
func (r *rateSampler) current() float64 {
	if len(r.rates) == 0 {
		return 0
	}
	return r.rates[len(r.rates)-1]
}

func (r *rateSampler) peak() float64 {
	p := 0.0
	for _, v := range r.rates {
		p = math.Max(p, v)
	}
	return p
}
