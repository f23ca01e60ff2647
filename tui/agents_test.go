package tui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

func TestAgents(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("3")
		h.waitFor("LAST SEEN", "support-agent")
		golden(t, h.finish())
	})

	t.Run("detail", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("3")
		h.waitFor("support-agent")
		h.press("enter")
		h.waitFor("Agent build-bot", "Tok0zzzzzzzz")
		golden(t, h.finish())
	})

}

func TestRevealWipe(t *testing.T) {
	m := newModel(newFakeAPI(), Options{NoColor: true}, func() time.Time { return t0 })
	m.c.loc = time.UTC
	ag := m.screens[3].(*tokensScreen)
	value := []byte("agw_SECRETTOKENVALUE")
	ag.form = newForm(m.c, "mint", fieldSpec{label: "label"})
	ag.form.busy = true
	m.active = 3
	m.Update(mintedMsg{agent: "build-bot", token: store.Token{ID: "x"}, value: value})
	if !strings.Contains(m.View(), "agw_SECRETTOKENVALUE") {
		t.Fatal("minted token not shown")
	}
	m.Update(keyMsg("enter"))
	if ag.reveal != nil {
		t.Error("reveal kept after dismiss")
	}
	if !bytes.Equal(value, make([]byte, len(value))) {
		t.Errorf("token bytes not wiped: %q", value)
	}
	if strings.Contains(m.View(), "SECRETTOKEN") {
		t.Error("token still on screen")
	}
}

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"12h", 12 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"0d", 0, true},
		{"-1h", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTTL(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("parseTTL(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
