package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestOverview(t *testing.T) {
	api := newFakeAPI()
	api.requests = []uint64{1000, 1060, 1180, 1210, 1500, 1520}
	h := startWith(t, api, 0, func(m *model) { m.screens[0].(*overview).reqs.width = time.Minute })
	h.waitFor("Latest denies", "no grant for backend hr")
	for i, n := range []int{60, 120, 30, 290, 20} {
		h.clock.Set(t0.Add(time.Duration(i+1) * time.Minute))
		h.tm.Send(tickMsg{})
		h.waitFor(fmt.Sprintf("latest %d ·", n))
	}
	m := h.finish()
	if v := m.View(); !strings.Contains(v, "Requests in each 1m window  latest 20 · most 290 · total 520 over 5m") {
		t.Errorf("the request counts are not labelled with what they count:\n%s", v)
	}
	golden(t, m)
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want string
	}{
		{"empty", nil, ""},
		{"zeros", []float64{0, 0, 0}, "▁▁▁"},
		{"ramp", []float64{0, 1, 2, 3, 4, 5, 6, 7}, "▁▂▃▄▅▆▇█"},
		{"peak scaled", []float64{50, 100}, "▅█"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sparkline(tt.in); got != tt.want {
				t.Errorf("sparkline(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRequestBuckets checks that the overview plots what was counted: 13
// requests, seen by a regular poll and by the immediate repoll an action
// makes 0.6s later, are 13 requests, never "301 per minute".
func TestRequestBuckets(t *testing.T) {
	start := t0.Add(-time.Hour)
	t.Run("repoll is not extrapolated", func(t *testing.T) {
		r := requestBuckets{max: 60, width: 2 * time.Second}
		r.add(0, t0, start)
		r.add(3, t0.Add(2*time.Second), start)
		r.add(13, t0.Add(2600*time.Millisecond), start) // the repoll after an action
		r.add(13, t0.Add(4*time.Second), start)
		if r.peak() != 13 || sum(r.counts) != 13 || r.current() != 0 {
			t.Errorf("counts %v: peak %v, total %v, latest %v; want 13, 13, 0", r.counts, r.peak(), sum(r.counts), r.current())
		}
	})
	t.Run("gaps, resets and the window", func(t *testing.T) {
		r := requestBuckets{max: 3, width: time.Minute}
		r.add(100, t0, start)
		r.add(160, t0.Add(time.Minute), start)
		r.add(220, t0.Add(90*time.Second), start) // same minute: added up
		r.add(10, t0.Add(2*time.Minute), start)   // went backwards: new baseline
		r.add(20, t0.Add(3*time.Minute), t0)      // restarted daemon: new baseline
		r.add(50, t0.Add(5*time.Minute), t0)      // minute 4 saw nothing
		want := []float64{0, 0, 30}
		if fmt.Sprint(r.counts) != fmt.Sprint(want) {
			t.Errorf("counts = %v, want %v", r.counts, want)
		}
	})
}
