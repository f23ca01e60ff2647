package tui

import (
	"fmt"
	"testing"
	"time"
)

func TestOverview(t *testing.T) {
	api := newFakeAPI()
	api.requests = []uint64{1000, 1060, 1180, 1210, 1500, 1520}
	h := start(t, api, 0)
	h.waitFor("Latest denies", "no grant for backend hr")
	for i, rate := range []int{60, 120, 30, 290, 20} {
		h.clock.Set(t0.Add(time.Duration(i+1) * time.Minute))
		h.tm.Send(tickMsg{})
		h.waitFor(fmt.Sprintf("now %d ·", rate))
	}
	m := h.finish()
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

func TestRateSampler(t *testing.T) {
	r := rateSampler{max: 3}
	start := t0.Add(-time.Hour)
	r.add(100, t0, start)
	r.add(160, t0.Add(time.Minute), start)
	r.add(220, t0.Add(90*time.Second), start) // 60 in half a minute
	r.add(10, t0.Add(2*time.Minute), start)   // went backwards: new baseline
	r.add(20, t0.Add(3*time.Minute), t0)      // restarted daemon: new baseline
	r.add(50, t0.Add(4*time.Minute), t0)
	r.add(50, t0.Add(5*time.Minute), t0)
	want := []float64{120, 30, 0}
	if fmt.Sprint(r.rates) != fmt.Sprint(want) {
		t.Errorf("rates = %v, want %v", r.rates, want)
	}
}
