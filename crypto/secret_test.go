package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const canary = "sk-canary-7f3a9c2e-do-not-print"

// leakForms lists the ways the canary could show up if a printing path fell
// back to the raw bytes: verbatim, hex, decimal bytes and base64 (what
// encoding/json does with a []byte).
func leakForms(s string) []string {
	dec := fmt.Sprintf("%d", []byte(s[:6]))
	return []string{
		s,
		hex.EncodeToString([]byte(s)),
		strings.ToUpper(hex.EncodeToString([]byte(s))),
		strings.Trim(dec, "[]"),
		base64.StdEncoding.EncodeToString([]byte(s)),
	}
}

func assertNoLeak(t *testing.T, out string) {
	t.Helper()
	for _, form := range leakForms(canary) {
		if strings.Contains(out, form) {
			t.Fatalf("output leaks the secret (as %q): %s", form, out)
		}
	}
}

var printVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%10s", "%-20v", "%T"}

func TestSecretFmtDirect(t *testing.T) {
	t.Parallel()
	s := NewSecret([]byte(canary))
	for _, verb := range printVerbs {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			out := fmt.Sprintf(verb, s)
			assertNoLeak(t, out)
			if verb != "%T" && !strings.Contains(out, "[redacted]") {
				t.Fatalf("Sprintf(%s) = %q, want it to say [redacted]", verb, out)
			}
			assertNoLeak(t, fmt.Sprintf(verb, &s))
		})
	}
	for name, out := range map[string]string{
		"Sprint":   fmt.Sprint(s),
		"Sprintln": fmt.Sprintln(s),
		"String":   s.String(),
		"GoString": s.GoString(),
		"Errorf":   fmt.Errorf("inject: %v", s).Error(),
	} {
		assertNoLeak(t, out)
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s = %q, want [redacted]", name, out)
		}
	}
}

// holder has the secret in every position a real config struct might: an
// exported field, an unexported field (fmt cannot call methods there), a
// pointer, a slice and a map.
type holder struct {
	Name    string
	Key     Secret
	key     Secret
	Ptr     *Secret
	List    []Secret
	ByName  map[string]Secret
	private []Secret
}

func newHolder() holder {
	s := NewSecret([]byte(canary))
	return holder{
		Name:    "openai",
		Key:     s,
		key:     s,
		Ptr:     &s,
		List:    []Secret{s},
		ByName:  map[string]Secret{"k": s},
		private: []Secret{s},
	}
}

func TestSecretFmtInStruct(t *testing.T) {
	t.Parallel()
	h := newHolder()
	for _, verb := range printVerbs {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			assertNoLeak(t, fmt.Sprintf(verb, h))
			assertNoLeak(t, fmt.Sprintf(verb, &h))
		})
	}
}

func TestSecretJSON(t *testing.T) {
	t.Parallel()
	h := newHolder()
	tests := []struct {
		name string
		v    any
	}{
		{"value", h.Key},
		{"pointer", h.Ptr},
		{"struct", h},
		{"struct pointer", &h},
		{"map key", map[Secret]int{h.Key: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			assertNoLeak(t, string(b))
			if !bytes.Contains(b, []byte("[redacted]")) {
				t.Fatalf("json = %s, want [redacted]", b)
			}
		})
	}
}

func TestSecretRefusesDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
	}{
		{"string", `{"Key":"sk-live-123"}`},
		{"redacted placeholder", `{"Key":"[redacted]"}`},
		{"number", `{"Key":42}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v struct{ Key Secret }
			err := json.Unmarshal([]byte(tt.input), &v)
			if !errors.Is(err, ErrSecretDecode) {
				t.Fatalf("json.Unmarshal error = %v, want ErrSecretDecode", err)
			}
			if !v.Key.IsZero() {
				t.Fatal("a secret was decoded despite the error")
			}
		})
	}
	var s Secret
	if err := s.UnmarshalText([]byte("x")); !errors.Is(err, ErrSecretDecode) {
		t.Fatalf("UnmarshalText error = %v, want ErrSecretDecode", err)
	}
}

func TestSecretSlog(t *testing.T) {
	t.Parallel()
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, mk := range handlers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := slog.New(mk(&buf))
			h := newHolder()
			log.Info("inject", "key", h.Key, "ptr", h.Ptr, "holder", h, slog.Group("g", "key", h.Key))
			log.With("key", h.Key).Info("with")
			log.Info("attr", slog.Any("key", h.Key))
			assertNoLeak(t, buf.String())
			if got := strings.Count(buf.String(), "[redacted]"); got < 5 {
				t.Fatalf("want at least 5 [redacted] markers, got %d in:\n%s", got, buf.String())
			}
		})
	}
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	src := []byte(canary)
	s := NewSecret(src)
	src[0] = 'X'
	if got := string(s.Reveal()); got != canary {
		t.Fatalf("Reveal = %q, want %q (NewSecret must copy its input)", got, canary)
	}
	out := s.Reveal()
	out[0] = 'Y'
	if got := string(s.Reveal()); got != canary {
		t.Fatalf("Reveal after mutating a previous Reveal = %q, want %q", got, canary)
	}
	if s.Len() != len(canary) || s.IsZero() {
		t.Fatalf("Len = %d, IsZero = %v", s.Len(), s.IsZero())
	}
}

func TestSecretEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b Secret
		want bool
	}{
		{"same bytes", NewSecret([]byte("abc")), NewSecret([]byte("abc")), true},
		{"different bytes", NewSecret([]byte("abc")), NewSecret([]byte("abd")), false},
		{"prefix", NewSecret([]byte("abc")), NewSecret([]byte("ab")), false},
		{"zero and empty", Secret{}, NewSecret(nil), true},
		{"zero and non-empty", Secret{}, NewSecret([]byte("a")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.a.Equal(tt.b); got != tt.want {
				t.Fatalf("Equal = %v, want %v", got, tt.want)
			}
			if got := tt.b.Equal(tt.a); got != tt.want {
				t.Fatalf("reversed Equal = %v, want %v", got, tt.want)
			}
		})
	}
	var z Secret
	if !z.IsZero() || z.Len() != 0 || z.Reveal() != nil {
		t.Fatal("zero Secret is not empty")
	}
}
