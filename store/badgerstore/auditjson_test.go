package badgerstore

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// checkEventJSON fails t unless appendEventJSON encodes ev exactly as
// json.Marshal does, or both refuse it.
func checkEventJSON(t *testing.T, ev *store.AuditEvent) {
	t.Helper()
	want, werr := json.Marshal(ev)
	got, ok := appendEventJSON([]byte("prefix"), ev)
	switch {
	case !ok && werr == nil:
		t.Fatalf("appendEventJSON refused %#v, Marshal gave %s", ev, want)
	case ok && werr != nil:
		t.Fatalf("appendEventJSON encoded %#v as %s, Marshal refused it: %v", ev, got, werr)
	case ok && !bytes.Equal(got, append([]byte("prefix"), want...)):
		t.Fatalf("event %#v\nappendEventJSON %s\nMarshal         prefix%s", ev, got, want)
	}
}

// strangeStrings hold everything Marshal escapes or replaces.
var strangeStrings = []string{
	"", "a", "crm-prod.1", "/v1/chat/completions?x=1", `say "hi"`, `C:\dir`, "<script>&amp;</script>",
	"tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f", "héllo wörld", "日本語", "\u2028\u2029", "a\u2028b",
	"\xff", "ok\xc3", "\xe2\x80", "\xed\xa0\x80", "😀", "\U0010FFFF", "\ufffd",
}

var strangeFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 812.5, 1e-6, 1e-7, 9.99999e-7, 1e20, 1e21, 1e22, -1e21,
	123456789.123456789, math.MaxFloat64, math.SmallestNonzeroFloat64, 5e-324, 1.5e-10, 2.5e+300,
	math.NaN(), math.Inf(1), math.Inf(-1),
}

var strangeTimes = []time.Time{
	{}, time.Unix(0, 0).UTC(), time.Date(2026, 11, 26, 8, 34, 33, 123456789, time.UTC),
	time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 5*3600+30*60)),
	time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 1000, time.UTC),
	time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)),
}

// randomEvent sets every field of an AuditEvent, whatever fields it has, to
// a random value, often zero or strange, so a field added to the type and
// not to appendEventJSON fails the test.
func randomEvent(t *testing.T, r *rand.Rand) *store.AuditEvent {
	var ev store.AuditEvent
	v := reflect.ValueOf(&ev).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if r.IntN(4) == 0 {
			continue // zero
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(randomString(r))
		case reflect.Int, reflect.Int64:
			f.SetInt([]int64{1, -1, r.Int64N(1000), r.Int64(), -r.Int64(), math.MinInt64}[r.IntN(6)])
		case reflect.Uint64:
			f.SetUint([]uint64{1, r.Uint64N(1000), r.Uint64(), math.MaxUint64}[r.IntN(4)])
		case reflect.Float64:
			if r.IntN(2) == 0 {
				f.SetFloat(strangeFloats[r.IntN(len(strangeFloats))])
			} else {
				f.SetFloat(math.Float64frombits(r.Uint64()))
			}
		default:
			if f.Type() != reflect.TypeFor[time.Time]() {
				t.Fatalf("AuditEvent.%s has type %s, which this test does not fill; teach it and appendEventJSON",
					v.Type().Field(i).Name, f.Type())
			}
			if r.IntN(2) == 0 {
				f.Set(reflect.ValueOf(strangeTimes[r.IntN(len(strangeTimes))]))
			} else {
				f.Set(reflect.ValueOf(time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).UTC()))
			}
		}
	}
	return &ev
}

func randomString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return strangeStrings[r.IntN(len(strangeStrings))]
	}
	b := make([]byte, r.IntN(20))
	for i := range b {
		if r.IntN(2) == 0 {
			b[i] = byte(0x20 + r.IntN(0x5f)) // printable ASCII
		} else {
			b[i] = byte(r.IntN(256))
		}
	}
	return string(b)
}

func TestEventJSONMatchesMarshal(t *testing.T) {
	t.Parallel()
	for _, s := range strangeStrings {
		checkEventJSON(t, &store.AuditEvent{Kind: s, Agent: s, Reason: s, Hash: s})
	}
	for _, f := range strangeFloats {
		checkEventJSON(t, &store.AuditEvent{UpstreamMillis: f})
		checkEventJSON(t, &store.AuditEvent{TotalMillis: f})
	}
	for _, tm := range strangeTimes {
		checkEventJSON(t, &store.AuditEvent{Time: tm})
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 50_000
	if testing.Short() {
		n = 2_000
	}
	for range n {
		checkEventJSON(t, randomEvent(t, r))
	}
}

func FuzzEventJSON(f *testing.F) {
	for i, s := range strangeStrings {
		f.Add(s, strangeFloats[i%len(strangeFloats)], int64(i))
	}
	f.Fuzz(func(t *testing.T, s string, x float64, n int64) {
		checkEventJSON(t, &store.AuditEvent{
			Seq: uint64(n), Time: time.Unix(n, n).UTC(), Kind: s, Path: s, Reason: s,
			Status: int(n), UpstreamMillis: x, TotalMillis: -x, BytesIn: n,
		})
	})
}
