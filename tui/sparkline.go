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

// requestBuckets turns samples of a monotonic counter into the number of
// requests counted in each fixed window of width (the refresh interval),
// keeping the newest max windows. It never extrapolates: a bar is what was
// counted, so 13 requests make at most 13, however close the polls were.
// An action repolls at once, so samples come at uneven times; each new
// count goes to the window its sample was taken in.
type requestBuckets struct {
	max     int
	width   time.Duration
	counts  []float64
	lastWin time.Time // start of the newest window
	last    uint64
	started time.Time // the daemon's start; a new one resets the baseline
	have    bool
}

// add records the counter's value at time at. A counter that went backwards
// or a restarted daemon only sets a new baseline.
func (r *requestBuckets) add(count uint64, at, started time.Time) {
	win := at.Truncate(r.width)
	if r.have && count >= r.last && started.Equal(r.started) && !win.Before(r.lastWin) {
		if len(r.counts) == 0 {
			r.counts = append(r.counts, 0)
			r.lastWin = win
		}
		// Windows with no sample in them saw no new requests.
		for gaps := 0; r.lastWin.Before(win) && gaps < r.max; gaps++ {
			r.counts = append(r.counts, 0)
			r.lastWin = r.lastWin.Add(r.width)
		}
		r.lastWin = win
		r.counts[len(r.counts)-1] += float64(count - r.last)
		if len(r.counts) > r.max {
			r.counts = r.counts[len(r.counts)-r.max:]
		}
	}
	r.last, r.started, r.have = count, started, true
}

// current is the count of the newest window, or 0 before there are two
// samples.
func (r *requestBuckets) current() float64 {
	if len(r.counts) == 0 {
		return 0
	}
	return r.counts[len(r.counts)-1]
}

// peak is the largest count of one window.
func (r *requestBuckets) peak() float64 {
	p := 0.0
	for _, v := range r.counts {
		p = math.Max(p, v)
	}
	return p
}
