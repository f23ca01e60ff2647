package storetest

import (
	"reflect"
	"testing"

	"github.com/agw-dev/agw/store"
)

// testPassthrough: listed hosts are normalised, survive Load, refuse
// duplicates and IP addresses, and delete exactly, each with its admin event.
func testPassthrough(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	p := &store.Passthrough{Host: "Pypi.ORG."}
	must(t, second(s.CreatePassthrough(ctx, p, ev("passthrough.add", "pypi.org"))))
	if p.Host != "pypi.org" || p.CreatedAt.IsZero() {
		t.Errorf("created %+v; want host pypi.org and a creation time", p)
	}
	must(t, second(s.CreatePassthrough(ctx, &store.Passthrough{Host: "*.github.com"}, ev("passthrough.add", "*.github.com"))))
	wantErr(t, second(s.CreatePassthrough(ctx, &store.Passthrough{Host: "pypi.org"}, ev("passthrough.add", "pypi.org"))), store.ErrExists, "pypi.org")
	wantErr(t, second(s.CreatePassthrough(ctx, &store.Passthrough{Host: "10.0.0.1"}, ev("passthrough.add", "10.0.0.1"))), store.ErrInvalid, "10.0.0.1")
	wantErr(t, second(s.CreatePassthrough(ctx, &store.Passthrough{Host: "*.com"}, ev("passthrough.add", "*.com"))), store.ErrInvalid, "wildcard")
	wantErr(t, second(s.DeletePassthrough(ctx, "ghost.example.com", ev("passthrough.remove", "ghost.example.com"))), store.ErrNotFound, "ghost.example.com")

	hosts := func() []string {
		snap, err := s.Load(ctx)
		must(t, err)
		var out []string
		for _, p := range snap.Passthrough {
			out = append(out, p.Host)
		}
		return out
	}
	if got, want := hosts(), []string{"*.github.com", "pypi.org"}; !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %v; want %v", got, want)
	}
	must(t, second(s.DeletePassthrough(ctx, "PYPI.org", ev("passthrough.remove", "pypi.org"))))
	if got, want := hosts(), []string{"*.github.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after delete loaded %v; want %v", got, want)
	}
	var actions []string
	must(t, s.QueryAudit(ctx, store.AuditQuery{Kind: store.KindAdmin}, func(e store.AuditEvent) bool {
		actions = append(actions, e.Action+" "+e.Target)
		return true
	}))
	want := []string{"passthrough.add pypi.org", "passthrough.add *.github.com", "passthrough.remove pypi.org"}
	if !reflect.DeepEqual(actions, want) {
		t.Errorf("admin events %v; want %v (refused writes leave none)", actions, want)
	}
}

// second drops a mutation's revision, for checks of its error alone.
func second(_ store.Revision, err error) error { return err }
