package tui

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// t0 is the fixed "now" of every test, so goldens do not move.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// fakeAPI is an in-process admin API with deterministic data. It records
// the writes it receives so tests can check what the TUI sent.
type fakeAPI struct {
	mu sync.Mutex

	down     error    // when set, every call fails with it
	requests []uint64 // Gateway.Requests of successive Status calls
	calls    int

	backends []store.Backend
	agents   []admin.AgentSummary
	grants   []store.Grant
	tokens   []store.Token
	idps     []store.IdP
	events   []store.AuditEvent
	live     chan admin.StreamMessage // fed to followers after the backlog

	added     []admin.AddBackendRequest
	addErr    error // when set, AddBackend records the request and refuses it
	updates   []admin.UpdateBackendRequest
	mints     []admin.MintRequest
	mintValue string
	audits    []store.AuditQuery // follow subscriptions, in order
	writes    []string           // other writes, described
}

func newFakeAPI() *fakeAPI {
	f := &fakeAPI{
		requests:  []uint64{1000},
		live:      make(chan admin.StreamMessage, 16),
		mintValue: "agw_Tok3nIdXXsecretsecretsecretsecretsecretsecretsecret9zCRC0",
	}
	f.backends = []store.Backend{
		{Name: "github", Hosts: []string{"api.github.com"}, Inject: store.InjectBearer, CredentialVersion: 2,
			CredentialSetAt: t0.Add(-72 * time.Hour), CreatedAt: t0.Add(-30 * 24 * time.Hour)},
		{Name: "openai", Hosts: []string{"api.openai.com"}, Inject: store.InjectBearer, CredentialVersion: 1,
			CredentialSetAt: t0.Add(-5 * time.Hour), CreatedAt: t0.Add(-5 * time.Hour)},
		{Name: "hr", Hosts: []string{"hr.corp.net", "hr-api.corp.net"}, Upstream: "https://10.0.0.5:8443",
			Inject: store.InjectHeader, Header: "X-Api-Key", CredentialVersion: 7,
			CredentialSetAt: t0.Add(-20 * time.Minute), CreatedAt: t0.Add(-90 * 24 * time.Hour)},
	}
	f.agents = []admin.AgentSummary{
		{Agent: store.Agent{Name: "build-bot", Description: "CI builds", CreatedAt: t0.Add(-48 * time.Hour)}, Tokens: 1, Grants: 2, LastSeen: t0.Add(-3 * time.Minute)},
		{Agent: store.Agent{Name: "support-agent", Disabled: true, CreatedAt: t0.Add(-24 * time.Hour)}, Tokens: 0, Grants: 1},
	}
	f.grants = []store.Grant{
		{Agent: "build-bot", Backend: "github", Methods: []string{"GET", "POST"}, Paths: []string{"/repos/**"}},
		{Agent: "build-bot", Backend: "openai", Methods: []string{"*"}, Paths: []string{"/v1/**"}},
		{Agent: "support-agent", Backend: "hr", Methods: []string{"GET"}, Paths: []string{"/people/*"}},
	}
	f.tokens = []store.Token{
		{ID: "Tok1aaaaaaaa", Agent: "build-bot", Label: "ci", CreatedAt: t0.Add(-48 * time.Hour)},
		{ID: "Tok0zzzzzzzz", Agent: "build-bot", Label: "old", CreatedAt: t0.Add(-96 * time.Hour), RevokedAt: t0.Add(-50 * time.Hour)},
	}
	f.idps = []store.IdP{
		{Name: "corp", Issuer: "https://login.corp.example/oauth2/default", Audience: "api://agw", Claim: "cid", CreatedAt: t0.Add(-10 * 24 * time.Hour)},
	}
	ev := func(seq uint64, agent, backend, method, path string, status int, decision, reason string) store.AuditEvent {
		return store.AuditEvent{Seq: seq, Time: t0.Add(time.Duration(seq-20) * time.Second), Kind: store.KindRequest,
			Agent: agent, AuthMethod: "token", Backend: backend, Method: method, Host: backend + ".example",
			Path: path, Status: status, Decision: decision, Reason: reason, TotalMillis: 12.5}
	}
	f.events = []store.AuditEvent{
		ev(1, "build-bot", "github", "GET", "/repos/agw/issues", 200, store.Allow, ""),
		ev(2, "build-bot", "openai", "POST", "/v1/chat/completions", 200, store.Allow, ""),
		ev(3, "support-agent", "hr", "GET", "/people/42", 403, store.Deny, "agent disabled"),
		{Seq: 4, Time: t0.Add(-16 * time.Second), Kind: store.KindAdmin, Action: "backend.rotate", Target: "hr", PeerUID: 1000},
		ev(5, "build-bot", "github", "DELETE", "/repos/agw", 403, store.Deny, "no grant allows DELETE"),
		ev(6, "build-bot", "github", "GET", "/repos/agw/pulls", 200, store.Allow, ""),
		{Seq: 7, Time: t0.Add(-13 * time.Second), Kind: store.KindTLS, Decision: store.Deny, Host: "evil.example", Reason: "unknown SNI"},
		ev(8, "build-bot", "hr", "GET", "/people", 403, store.Deny, "no grant for backend hr"),
	}
	return f
}

func (f *fakeAPI) setDown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = err
}

func (f *fakeAPI) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

func (f *fakeAPI) Status(ctx context.Context) (*admin.Status, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	req := f.requests[min(f.calls, len(f.requests)-1)]
	f.calls++
	active := 0
	for i := range f.tokens {
		if f.tokens[i].Active(t0) {
			active++
		}
	}
	return &admin.Status{
		Version: "1.0.0-test", PID: 4242, StartedAt: t0.Add(-(3*time.Hour + 12*time.Minute + 5*time.Second)),
		DataDir:   "/var/lib/agw",
		Listeners: admin.Listeners{Admin: "/run/agw/admin.sock", HTTPS: "0.0.0.0:443", DNS: "0.0.0.0:53"},
		Counts:    admin.Counts{Backends: len(f.backends), Agents: len(f.agents), Grants: len(f.grants), Tokens: active},
		Gateway:   admin.Traffic{Requests: req, Allowed: req - 37, Denied: 37, TLSRefused: 2},
	}, nil
}

func (f *fakeAPI) Backends(ctx context.Context) ([]store.Backend, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.backends), nil
}

func (f *fakeAPI) Backend(ctx context.Context, name string) (*admin.BackendDetail, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.backends {
		if b.Name == name {
			d := &admin.BackendDetail{Backend: b}
			for _, g := range f.grants {
				if g.Backend == name {
					d.Grants = append(d.Grants, g)
				}
			}
			return d, nil
		}
	}
	return nil, &admin.Error{Status: 404, Code: admin.CodeNotFound, Message: "backend " + name + " not found"}
}

func (f *fakeAPI) AddBackend(ctx context.Context, req admin.AddBackendRequest) (*store.Backend, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, req)
	if f.addErr != nil {
		return nil, f.addErr
	}
	b := req.Backend
	b.CredentialVersion, b.CredentialSetAt, b.CreatedAt = 1, t0, t0
	f.backends = append(f.backends, b)
	return &b, nil
}

func (f *fakeAPI) UpdateBackend(ctx context.Context, name string, req admin.UpdateBackendRequest) (*store.Backend, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, req)
	for i := range f.backends {
		b := &f.backends[i]
		if b.Name != name {
			continue
		}
		if req.Rate != nil {
			b.Rate = *req.Rate
		}
		if req.Burst != nil {
			b.Burst = *req.Burst
		}
		if req.Timeout != nil {
			b.Timeout = *req.Timeout
		}
		if req.NoScrub != nil {
			b.NoScrub = *req.NoScrub
		}
		out := *b
		return &out, nil
	}
	return nil, &admin.Error{Status: 404, Code: admin.CodeNotFound, Message: "backend " + name + " not found"}
}

func (f *fakeAPI) Grants(ctx context.Context, agent string) ([]store.Grant, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Grant
	for _, g := range f.grants {
		if agent == "" || g.Agent == agent {
			out = append(out, g)
		}
	}
	return out, nil
}

func (f *fakeAPI) Tokens(ctx context.Context, agent string) ([]store.Token, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Token
	for _, t := range f.tokens {
		if agent == "" || t.Agent == agent {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeAPI) IdPs(ctx context.Context) ([]store.IdP, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.idps), nil
}

func (f *fakeAPI) AddIdP(ctx context.Context, p store.IdP) (*store.IdP, error) {
	f.record(fmt.Sprintf("add idp %s %s %s %s", p.Name, p.Issuer, p.Audience, p.Claim))
	return &p, nil
}

func (f *fakeAPI) RemoveIdP(ctx context.Context, name string) error {
	f.record("remove idp " + name)
	return nil
}

func (f *fakeAPI) RotateBackend(ctx context.Context, name string, secret admin.SecretInput) (*store.Backend, error) {
	f.record("rotate " + name + " " + secret.Value)
	return &store.Backend{Name: name}, nil
}

func (f *fakeAPI) RemoveBackend(ctx context.Context, name string) error {
	f.record("remove backend " + name)
	return nil
}

func (f *fakeAPI) Agents(ctx context.Context) ([]admin.AgentSummary, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.agents), nil
}

func (f *fakeAPI) Agent(ctx context.Context, name string) (*admin.AgentDetail, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.agents {
		if a.Name == name {
			d := &admin.AgentDetail{Agent: a.Agent}
			for _, g := range f.grants {
				if g.Agent == name {
					d.Grants = append(d.Grants, g)
				}
			}
			for _, t := range f.tokens {
				if t.Agent == name {
					d.Tokens = append(d.Tokens, t)
				}
			}
			return d, nil
		}
	}
	return nil, &admin.Error{Status: 404, Code: admin.CodeNotFound, Message: "agent " + name + " not found"}
}

func (f *fakeAPI) AddAgent(ctx context.Context, a store.Agent) (*store.Agent, error) {
	f.record("add agent " + a.Name + " (" + a.Description + ")")
	return &a, nil
}

// record notes a write, for the tests to compare.
func (f *fakeAPI) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, s)
}

func (f *fakeAPI) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

func (f *fakeAPI) UpdateAgent(ctx context.Context, name string, req admin.UpdateAgentRequest) (*store.Agent, error) {
	f.record(fmt.Sprintf("update agent %s disabled=%v", name, *req.Disabled))
	return &store.Agent{Name: name}, nil
}

func (f *fakeAPI) RemoveAgent(ctx context.Context, name string) error {
	f.record("remove agent " + name)
	return nil
}

func (f *fakeAPI) PutGrant(ctx context.Context, g store.Grant) (*store.Grant, error) {
	f.record(fmt.Sprintf("grant %s %s %v %v", g.Agent, g.Backend, g.Methods, g.Paths))
	return &g, nil
}

func (f *fakeAPI) RemoveGrant(ctx context.Context, agent, backend string) error {
	f.record("ungrant " + agent + " " + backend)
	return nil
}

func (f *fakeAPI) MintToken(ctx context.Context, req admin.MintRequest) (*admin.MintedToken, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mints = append(f.mints, req)
	t := store.Token{ID: "Tok3nIdXX", Agent: req.Agent, Label: req.Label, CreatedAt: t0}
	f.tokens = append(f.tokens, t)
	return &admin.MintedToken{Token: t, Value: f.mintValue}, nil
}

func (f *fakeAPI) RevokeToken(ctx context.Context, id string) (*store.Token, error) {
	f.record("revoke " + id)
	return &store.Token{ID: id}, nil
}

// Audit answers the stored events matching q; with follow it then relays
// whatever the test sends on f.live until ctx ends.
func (f *fakeAPI) Audit(ctx context.Context, q store.AuditQuery, follow bool, fn func(admin.StreamMessage) error) error {
	if err := f.fail(); err != nil {
		return err
	}
	f.mu.Lock()
	if follow {
		f.audits = append(f.audits, q)
	}
	var match []store.AuditEvent
	for _, ev := range f.events {
		if q.Match(&ev) {
			match = append(match, ev)
		}
	}
	f.mu.Unlock()
	if q.Last > 0 && len(match) > q.Last {
		match = match[len(match)-q.Last:]
	}
	for i := range match {
		if err := fn(admin.StreamMessage{Event: &match[i]}); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-f.live:
			if m.Event != nil && !q.Match(m.Event) {
				continue
			}
			if err := fn(m); err != nil {
				return err
			}
		}
	}
}

func (f *fakeAPI) lastAudit() store.AuditQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.audits) == 0 {
		return store.AuditQuery{}
	}
	return f.audits[len(f.audits)-1]
}
