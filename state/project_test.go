package state

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

type projection struct {
	st   store.Store
	keys *crypto.Keyring
	view *State
}

// newProjection opens a real store, loads the view and keeps it current
// with a Projector until the test ends.
func newProjection(t *testing.T, wrap func(store.Store) store.Store) *projection {
	t.Helper()
	bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	var st store.Store = bs
	if wrap != nil {
		st = wrap(bs)
	}
	keys, err := crypto.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	view, err := Load(snap, keys)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&Projector{Store: st, Keys: keys, State: view}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &projection{st: st, keys: keys, view: view}
}

func (p *projection) seal(t *testing.T, secret string) []byte {
	t.Helper()
	b, err := p.keys.Seal([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *projection) wait(t *testing.T, rev store.Revision, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.view.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

var ev = store.AuditEvent{Kind: store.KindAdmin, Action: "test"}

// Every kind of write reaches the view through the change feed alone, and
// deletes take their dependents with them.
func TestProjectionFollowsTheStore(t *testing.T) {
	t.Parallel()
	p := newProjection(t, nil)
	ctx := t.Context()
	b := store.Backend{Name: "api", Hosts: []string{"api.example.com", "*.crm.example.com"}, Inject: store.InjectBearer}
	rev, err := p.st.CreateBackend(ctx, &b, &store.Credential{Backend: "api", Sealed: p.seal(t, "secret-one")}, ev)
	p.wait(t, rev, err)
	r := p.view.RouteHost("eu.crm.example.com")
	if r == nil || string(r.Secret.Reveal()) != "secret-one" || r.Backend.CredentialVersion != 1 {
		t.Fatalf("backend after create: %+v", r)
	}
	rev, err = p.st.CreateAgent(ctx, &store.Agent{Name: "bot"}, ev)
	p.wait(t, rev, err)
	rev, err = p.st.PutGrant(ctx, &store.Grant{Agent: "bot", Backend: "api", Methods: []string{"GET"}, Paths: []string{"/**"}}, ev)
	p.wait(t, rev, err)
	_, id, hash, _ := crypto.MintToken()
	rev, err = p.st.CreateToken(ctx, &store.Token{ID: id, Agent: "bot", Hash: hash}, ev)
	p.wait(t, rev, err)
	if p.view.Grant("bot", "api") == nil || p.view.Token(id) == nil {
		t.Fatal("grant or token missing from the view")
	}

	// Rotation: the next request injects the new version.
	_, rev, err = p.st.RotateCredential(ctx, &store.Credential{Backend: "api", Sealed: p.seal(t, "secret-two")}, ev)
	p.wait(t, rev, err)
	if r := p.view.Backend("api"); string(r.Secret.Reveal()) != "secret-two" || r.Backend.CredentialVersion != 2 {
		t.Fatalf("after rotation: version %d", r.Backend.CredentialVersion)
	}
	// An update keeps the credential.
	b2 := *p.view.Backend("api")
	b2.Backend.Hosts = []string{"api.example.com"}
	rev, err = p.st.UpdateBackend(ctx, &b2.Backend, ev)
	p.wait(t, rev, err)
	if p.view.RouteHost("eu.crm.example.com") != nil || string(p.view.Backend("api").Secret.Reveal()) != "secret-two" {
		t.Fatal("update: a removed host still routes, or the credential was lost")
	}

	// Revocation is visible at once.
	_, rev, err = p.st.RevokeToken(ctx, id, time.Now(), ev)
	p.wait(t, rev, err)
	if tok := p.view.Token(id); tok == nil || tok.RevokedAt.IsZero() {
		t.Fatal("revocation not applied")
	}
	// Deleting the agent drops its grants and tokens from the view.
	rev, err = p.st.DeleteAgent(ctx, "bot", ev)
	p.wait(t, rev, err)
	if p.view.Agent("bot") != nil || p.view.Grant("bot", "api") != nil || p.view.Token(id) != nil {
		t.Fatal("agent delete left dependents in the view")
	}
	rev, err = p.st.DeleteBackend(ctx, "api", ev)
	p.wait(t, rev, err)
	if p.view.RouteHost("api.example.com") != nil {
		t.Fatal("deleted backend still routes")
	}
	if !p.view.ConfirmedAt().After(time.Now().Add(-5 * time.Second)) {
		t.Errorf("ConfirmedAt %v is not recent", p.view.ConfirmedAt())
	}
}

// compactingStore answers the first Watch with ErrCompacted, as a store
// whose history no longer reaches the view's revision does.
type compactingStore struct {
	store.Store
	once atomic.Bool
}

func (c *compactingStore) Watch(ctx context.Context, after store.Revision, fn func(store.ChangeSet) error) error {
	if c.once.CompareAndSwap(false, true) {
		return store.ErrCompacted
	}
	return c.Store.Watch(ctx, after, fn)
}

// When the history is gone the view reloads from a snapshot and carries on.
func TestProjectionReloadsWhenHistoryIsGone(t *testing.T) {
	t.Parallel()
	var cs *compactingStore
	p := newProjection(t, func(s store.Store) store.Store { cs = &compactingStore{Store: s}; return cs })
	rev, err := p.st.CreateAgent(t.Context(), &store.Agent{Name: "late"}, ev)
	p.wait(t, rev, err)
	if !cs.once.Load() || p.view.Agent("late") == nil {
		t.Fatal("the view did not reload and follow the feed")
	}
}

// A write the view cannot reach makes WaitFor fail with a message that
// says the change was stored.
func TestWaitForTimesOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := New()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() {
			time.Sleep(time.Second)
			s.Apply(store.ChangeSet{Revision: 3}, nil, time.Now())
		}()
		err := s.WaitFor(ctx, 5)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stored (revision 5)") || s.Revision() != 3 {
			t.Fatalf("WaitFor = %v at revision %d", err, s.Revision())
		}
		go s.Apply(store.ChangeSet{Revision: 5}, nil, time.Now())
		if err := s.WaitFor(context.Background(), 5); err != nil {
			t.Fatal(err)
		}
	})
}
