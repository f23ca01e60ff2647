package state

import (
	"testing"

	"github.com/agw-dev/agw/store"
)

func TestPassesThrough(t *testing.T) {
	s := New()
	s.PutPassthrough(store.Passthrough{Host: "pypi.org"})
	s.PutPassthrough(store.Passthrough{Host: "*.github.com"})
	for host, want := range map[string]bool{
		"pypi.org": true, "files.pypi.org": false, "api.github.com": true,
		"github.com": false, "a.b.github.com": false, "other.org": false, "": false,
	} {
		if got := s.PassesThrough(host); got != want {
			t.Errorf("PassesThrough(%q) = %v; want %v", host, got, want)
		}
	}
	s.RemovePassthrough("*.github.com")
	if s.PassesThrough("api.github.com") {
		t.Error("a removed wildcard still passes")
	}
	if l := s.ListPassthrough(); len(l) != 1 || l[0].Host != "pypi.org" {
		t.Errorf("list %+v; want pypi.org alone", l)
	}
}
