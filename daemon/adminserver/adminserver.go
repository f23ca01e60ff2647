// Package adminserver is the server half of the admin API: HTTP+JSON on the
// daemon's Unix socket, the caller's uid checked from the kernel, every
// mutation written to the store with its audit event.
package adminserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/audit"
	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// Server is the server half of the admin API. Every mutation goes to the
// store first (with its audit event, in one transaction) and then to the
// in-memory state, under writeMu so the two stay in the same order.
type Server struct {
	st        store.Store
	state     *state.State
	keys      *crypto.Keyring
	caCert    *crypto.CA
	auditLog  *audit.Log
	statusFn  func() admin.Status
	exportDNS func(w io.Writer, format string) error
	stopping  <-chan struct{}
	log       *slog.Logger
	now       func() time.Time
	policy    adminPolicy
	writeMu   sync.Mutex

	checkpoints *audit.Checkpointer
	mutated     []store.AuditEvent // admin events of the running mutation; guarded by writeMu
}

// Config is what the admin server serves from; every field but Now,
// Logger and AdminGroup is required.
type Config struct {
	Store store.Store
	State *state.State
	Keys  *crypto.Keyring
	CA    *crypto.CA
	Audit *audit.Log
	// Status reports the daemon's status (GET /status).
	Status func() admin.Status
	// ExportDNS writes the DNS overrides in a resolver's format.
	ExportDNS func(w io.Writer, format string) error
	// Stopping is closed when the daemon begins to shut down: follow
	// streams end then.
	Stopping <-chan struct{}
	// Checkpoints signs and keeps the audit chain's checkpoints; verify
	// checks the trail against them. Nil: none.
	Checkpoints *audit.Checkpointer
	// AdminGroup, when set, may use the API beside root and the daemon's
	// own user.
	AdminGroup string
	Logger     *slog.Logger
	Now        func() time.Time // nil → time.Now
}

// New checks cfg and returns the server. The error names an unknown admin
// group.
func New(cfg Config) (*Server, error) {
	pol, err := newAdminPolicy(cfg.AdminGroup)
	if err != nil {
		return nil, err
	}
	s := &Server{
		st: cfg.Store, state: cfg.State, keys: cfg.Keys, caCert: cfg.CA, auditLog: cfg.Audit,
		statusFn: cfg.Status, exportDNS: cfg.ExportDNS, stopping: cfg.Stopping,
		log: cfg.Logger, now: cfg.Now, policy: pol,
		checkpoints: cfg.Checkpoints,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// GroupGID is the admin group's gid, or -1 without one (for Listen).
func (s *Server) GroupGID() int { return s.policy.groupGID }

// Serve answers the admin API on ln until ctx is done, then finishes the
// requests in progress (follow streams end at once) for up to 15 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ConnContext:       peerConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	shutCtx, done := context.WithTimeout(context.Background(), 15*time.Second)
	defer done()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// maxAdminBody bounds admin request bodies; the largest legitimate one is a
// backend with an upstream CA bundle.
const maxAdminBody = 1 << 20

// Handler is the admin API, with the caller's uid checked first.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(method, path string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				s.writeError(w, r, err)
			}
		})
	}
	route("GET", admin.PathStatus, s.status)
	route("GET", admin.PathBackends, s.listBackends)
	route("POST", admin.PathBackends, s.addBackend)
	route("GET", admin.PathBackend, s.showBackend)
	route("PATCH", admin.PathBackend, s.updateBackend)
	route("DELETE", admin.PathBackend, s.removeBackend)
	route("POST", admin.PathRotate, s.rotateBackend)
	route("GET", admin.PathAgents, s.listAgents)
	route("POST", admin.PathAgents, s.addAgent)
	route("GET", admin.PathAgent, s.showAgent)
	route("PATCH", admin.PathAgent, s.updateAgent)
	route("DELETE", admin.PathAgent, s.removeAgent)
	route("GET", admin.PathGrants, s.listGrants)
	route("POST", admin.PathGrants, s.putGrant)
	route("DELETE", admin.PathGrant, s.removeGrant)
	route("GET", admin.PathTokens, s.listTokens)
	route("POST", admin.PathTokens, s.mintToken)
	route("POST", admin.PathTokenRevoke, s.revokeToken)
	route("GET", admin.PathIdPs, s.listIdPs)
	route("POST", admin.PathIdPs, s.addIdP)
	route("DELETE", admin.PathIdP, s.removeIdP)
	route("GET", admin.PathPassthrough, s.listPassthrough)
	route("POST", admin.PathPassthrough, s.addPassthrough)
	route("DELETE", admin.PathPassHost, s.removePassthrough)
	route("GET", admin.PathAudit, s.audit)
	route("POST", admin.PathAuditVerify, s.auditVerify)
	route("POST", admin.PathAuditCheckpoint, s.auditCheckpoint)
	route("GET", admin.PathCA, s.ca)
	route("GET", admin.PathDNSExport, s.dnsExport)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: no admin endpoint %s %s (client and daemon versions may differ)", store.ErrNotFound, r.Method, r.URL.Path))
	})
	return s.authorize(mux)
}

// authorize refuses callers whose kernel-reported uid is not allowed.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerFrom(r.Context())
		if ok, why := s.policy.allows(p); !ok {
			s.log.Warn("admin request refused", "uid", p.UID, "pid", p.PID, "method", r.Method, "path", r.URL.Path)
			s.writeError(w, r, fmt.Errorf("%w: %s", store.ErrForbidden, why))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusInternalServerError, admin.CodeInternal
	switch {
	case errors.Is(err, store.ErrNotFound):
		status, code = http.StatusNotFound, admin.CodeNotFound
	case errors.Is(err, store.ErrExists):
		status, code = http.StatusConflict, admin.CodeExists
	case errors.Is(err, store.ErrInvalid):
		status, code = http.StatusBadRequest, admin.CodeInvalid
	case errors.Is(err, store.ErrConflict):
		status, code = http.StatusConflict, admin.CodeConflict
	case errors.Is(err, store.ErrForbidden):
		status, code = http.StatusForbidden, admin.CodeForbidden
	}
	body := admin.ErrorBody{Error: admin.ErrorDetail{Code: code, Message: err.Error()}}
	var fe *store.FieldError
	if errors.As(err, &fe) {
		body.Error.Field = fe.Field
	}
	if status == http.StatusInternalServerError {
		s.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The decoder's message can quote input; the only secrets in admin
		// requests sit in SecretInput.Value, a string field, which the
		// decoder never echoes, so its error is safe to return.
		return fmt.Errorf("%w: request body: %v", store.ErrInvalid, err)
	}
	return nil
}

// adminEvent is the audit record of a mutation by the request's caller.
func (s *Server) adminEvent(r *http.Request, action, target string) store.AuditEvent {
	p := peerFrom(r.Context())
	ev := store.AuditEvent{
		Time:     s.now(),
		Kind:     store.KindAdmin,
		Action:   action,
		Target:   target,
		PeerUID:  p.UID,
		PeerPID:  p.PID,
		Decision: store.Allow,
	}
	// Every admin event is made inside mutate, under writeMu; it is
	// handed to the secondary audit sinks once the write succeeded.
	s.mutated = append(s.mutated, ev)
	return ev
}

// mutate runs one store write, wakes audit followers (the write stored its
// admin event) and answers once the in-memory view has applied the
// revision the write produced, so the write is visible to the next request.
// Writes are serialised so that read-modify-write handlers see each
// other's results.
func (s *Server) mutate(ctx context.Context, fn func() (store.Revision, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mutated = s.mutated[:0]
	rev, err := fn()
	if err != nil {
		return err
	}
	s.auditLog.Notify()
	s.auditLog.Stored(s.mutated)
	wctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	if err := s.state.WaitFor(wctx, rev); err != nil {
		return fmt.Errorf("%w; check the daemon's log and `agw status`", err)
	}
	return nil
}

// applyTimeout bounds the wait for the view to apply a write.
const applyTimeout = 10 * time.Second

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.statusFn())
	return nil
}

func (s *Server) listBackends(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.state.ListBackends())
	return nil
}

func backendWarnings(b *store.Backend) []string {
	var out []string
	if strings.HasPrefix(b.Upstream, "http://") {
		out = append(out, "upstream uses plain http: the credential crosses the network unencrypted")
	}
	if b.NoScrub {
		out = append(out, "response scrubbing is off: a backend that reflects the credential would show it to the agent")
	}
	return out
}

func (s *Server) showBackend(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rt := s.state.Backend(name)
	if rt == nil {
		return fmt.Errorf("backend %q: %w (see `agw backend list`)", name, store.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, admin.BackendDetail{
		Backend:  rt.Backend,
		Grants:   nonNil(s.state.ListGrants("", name)),
		Warnings: backendWarnings(&rt.Backend),
	})
	return nil
}

// secretBytes checks a secret with store.ValidateSecret for a backend whose
// scrubbing is off when noScrub: the same rules the CLI applies, for every
// client (the TUI, scripts calling the API).
func secretBytes(in admin.SecretInput, noScrub bool) ([]byte, error) {
	b := []byte(in.Value)
	if err := store.ValidateSecret(b, noScrub); err != nil {
		return nil, err
	}
	return b, nil
}

func (s *Server) addBackend(w http.ResponseWriter, r *http.Request) error {
	var req admin.AddBackendRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	b := req.Backend
	b.Normalize()
	secret, err := secretBytes(req.Secret, b.NoScrub)
	if err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	sealed, err := s.keys.Seal(secret)
	if err != nil {
		return fmt.Errorf("seal credential: %w", err)
	}
	err = s.mutate(r.Context(), func() (store.Revision, error) {
		c := &store.Credential{Backend: b.Name, Sealed: sealed}
		rev, err := s.st.CreateBackend(r.Context(), &b, c, s.adminEvent(r, "backend.add", b.Name))
		return rev, err
	})
	if err != nil {
		return err
	}
	s.log.Info("backend added", "backend", b.Name, "hosts", b.Hosts, "uid", peerFrom(r.Context()).UID)
	writeJSON(w, http.StatusCreated, b)
	return nil
}

func (s *Server) updateBackend(w http.ResponseWriter, r *http.Request) error {
	var req admin.UpdateBackendRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	var b store.Backend
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		rt := s.state.Backend(name)
		if rt == nil {
			return 0, fmt.Errorf("backend %q: %w", name, store.ErrNotFound)
		}
		b = rt.Backend
		b.Hosts = append([]string(nil), b.Hosts...)
		if req.Rate != nil {
			b.Rate = *req.Rate
			if b.Rate == "" {
				b.Burst = 0 // removing the limit removes its burst too
			}
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
		applyBackendUpdate(&b, &req)
		b.Normalize()
		if err := b.Validate(); err != nil {
			return 0, err
		}
		rev, err := s.st.UpdateBackend(r.Context(), &b, s.adminEvent(r, "backend.update", name))
		return rev, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *Server) rotateBackend(w http.ResponseWriter, r *http.Request) error {
	var req admin.RotateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	noScrub := false
	if rt := s.state.Backend(name); rt != nil {
		noScrub = rt.Backend.NoScrub
	}
	secret, err := secretBytes(req.Secret, noScrub)
	if err != nil {
		return err
	}
	sealed, err := s.keys.Seal(secret)
	if err != nil {
		return fmt.Errorf("seal credential: %w", err)
	}
	var b *store.Backend
	err = s.mutate(r.Context(), func() (store.Revision, error) {
		c := &store.Credential{Backend: name, Sealed: sealed}
		var err error
		var rev store.Revision
		b, rev, err = s.st.RotateCredential(r.Context(), c, s.adminEvent(r, "backend.rotate", name))
		return rev, err
	})
	if err != nil {
		return err
	}
	s.log.Info("credential rotated", "backend", name, "version", b.CredentialVersion, "uid", peerFrom(r.Context()).UID)
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *Server) removeBackend(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		rev, err := s.st.DeleteBackend(r.Context(), name, s.adminEvent(r, "backend.remove", name))
		return rev, err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) error {
	now := s.now()
	agents := s.state.ListAgents()
	out := make([]admin.AgentSummary, 0, len(agents))
	for _, a := range agents {
		out = append(out, admin.AgentSummary{
			Agent:    a,
			Tokens:   s.state.ActiveTokenCount(a.Name, now),
			Grants:   len(s.state.ListGrants(a.Name, "")),
			LastSeen: s.state.Seen(a.Name),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) showAgent(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	a := s.state.Agent(name)
	if a == nil {
		return fmt.Errorf("agent %q: %w (see `agw agent list`)", name, store.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, admin.AgentDetail{
		Agent:  *a,
		Grants: nonNil(s.state.ListGrants(name, "")),
		Tokens: nonNil(s.state.ListTokens(name)),
	})
	return nil
}

func (s *Server) addAgent(w http.ResponseWriter, r *http.Request) error {
	var a store.Agent
	if err := decodeBody(r, &a); err != nil {
		return err
	}
	a.Normalize()
	if err := a.Validate(); err != nil {
		return err
	}
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		rev, err := s.st.CreateAgent(r.Context(), &a, s.adminEvent(r, "agent.add", a.Name))
		return rev, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) updateAgent(w http.ResponseWriter, r *http.Request) error {
	var req admin.UpdateAgentRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	var a store.Agent
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		cur := s.state.Agent(name)
		if cur == nil {
			return 0, fmt.Errorf("agent %q: %w", name, store.ErrNotFound)
		}
		a = *cur
		action := "agent.update"
		if req.Disabled != nil {
			a.Disabled = *req.Disabled
			if a.Disabled {
				action = "agent.disable"
			} else {
				action = "agent.enable"
			}
		}
		if req.Description != nil {
			a.Description = *req.Description
		}
		if req.Rate != nil {
			a.Rate = *req.Rate
			if a.Rate == "" {
				a.Burst = 0 // removing the limit removes its burst too
			}
		}
		if req.Burst != nil {
			a.Burst = *req.Burst
		}
		if req.MaxConcurrent != nil {
			a.MaxConcurrent = *req.MaxConcurrent
		}
		a.Normalize()
		if err := a.Validate(); err != nil {
			return 0, err
		}
		rev, err := s.st.UpdateAgent(r.Context(), &a, s.adminEvent(r, action, name))
		return rev, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) removeAgent(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		rev, err := s.st.DeleteAgent(r.Context(), name, s.adminEvent(r, "agent.remove", name))
		return rev, err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nonNil(s.state.ListGrants(r.URL.Query().Get("agent"), r.URL.Query().Get("backend"))))
	return nil
}

// putGrant creates a grant; with ?replace=true it replaces an existing one.
// A grant names its methods and paths: an empty list is refused rather than
// read as "everything" ("*" and "/**" say that explicitly), so that a grant
// never widens by surprise, and adding over an existing grant is refused,
// showing it, unless the caller asked to replace it.
func (s *Server) putGrant(w http.ResponseWriter, r *http.Request) error {
	var g store.Grant
	if err := decodeBody(r, &g); err != nil {
		return err
	}
	replace := r.URL.Query().Get("replace") == "true"
	if len(g.Methods) == 0 {
		return &store.FieldError{Field: "method", Reason: "no method given: name each with --method GET, or give --any-method to allow every method"}
	}
	if len(g.Paths) == 0 {
		return &store.FieldError{Field: "path", Reason: "no path given: name each with --path '/v1/**', or give --any-path to allow every path"}
	}
	g.Normalize()
	if err := g.Validate(); err != nil {
		return err
	}
	status := http.StatusCreated
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		if old := s.state.Grant(g.Agent, g.Backend); old != nil {
			if !replace {
				return 0, fmt.Errorf("%w: %s may already call %s: methods %s, paths %s; replace it with `agw grant add --replace`, or change it with `agw grant update`",
					store.ErrExists, g.Agent, g.Backend, strings.Join(old.Methods, ","), strings.Join(old.Paths, " "))
			}
			status = http.StatusOK
		}
		action := "grant.add"
		if status == http.StatusOK {
			action = "grant.replace"
		}
		return s.st.PutGrant(r.Context(), &g, s.adminEvent(r, action, g.Agent+"/"+g.Backend))
	})
	if err != nil {
		return err
	}
	writeJSON(w, status, g)
	return nil
}

func (s *Server) removeGrant(w http.ResponseWriter, r *http.Request) error {
	agent, backend := r.PathValue("agent"), r.PathValue("backend")
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		rev, err := s.st.DeleteGrant(r.Context(), agent, backend, s.adminEvent(r, "grant.remove", agent+"/"+backend))
		return rev, err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nonNil(s.state.ListTokens(r.URL.Query().Get("agent"))))
	return nil
}

func (s *Server) mintToken(w http.ResponseWriter, r *http.Request) error {
	var req admin.MintRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.TTL < 0 {
		return &store.FieldError{Field: "ttl", Value: req.TTL.Std().String(), Reason: "must be positive, or omitted for no expiry"}
	}
	value, id, hash, err := crypto.MintToken()
	if err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	now := s.now()
	t := store.Token{ID: id, Agent: req.Agent, Label: req.Label, Hash: hash, CreatedAt: now}
	if req.TTL > 0 {
		t.ExpiresAt = now.Add(req.TTL.Std())
	}
	err = s.mutate(r.Context(), func() (store.Revision, error) {
		return s.st.CreateToken(r.Context(), &t, s.adminEvent(r, "token.mint", id+" ("+req.Agent+")"))
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, admin.MintedToken{Token: t, Value: string(value.Reveal())})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var t *store.Token
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		var err error
		var rev store.Revision
		t, rev, err = s.st.RevokeToken(r.Context(), id, s.now(), s.adminEvent(r, "token.revoke", id))
		return rev, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) listPassthrough(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.state.ListPassthrough())
	return nil
}

func (s *Server) addPassthrough(w http.ResponseWriter, r *http.Request) error {
	var p store.Passthrough
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		return s.st.CreatePassthrough(r.Context(), &p, s.adminEvent(r, "passthrough.add", p.Host))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) removePassthrough(w http.ResponseWriter, r *http.Request) error {
	host := store.NormalizeHost(r.PathValue("host"))
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		return s.st.DeletePassthrough(r.Context(), host, s.adminEvent(r, "passthrough.remove", host))
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listIdPs(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.state.ListIdPs())
	return nil
}

func (s *Server) addIdP(w http.ResponseWriter, r *http.Request) error {
	var p store.IdP
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		rev, err := s.st.CreateIdP(r.Context(), &p, s.adminEvent(r, "idp.add", p.Name))
		return rev, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) removeIdP(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.mutate(r.Context(), func() (store.Revision, error) {
		rev, err := s.st.DeleteIdP(r.Context(), name, s.adminEvent(r, "idp.remove", name))
		return rev, err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) ca(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(s.caCert.CertPEM)
	return err
}

func (s *Server) dnsExport(w http.ResponseWriter, r *http.Request) error {
	var buf strings.Builder
	if err := s.exportDNS(&buf, r.URL.Query().Get("format")); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := io.WriteString(w, buf.String())
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// applyBackendUpdate sets the fields req names on b. Changing the inject
// mode clears the previous mode's own settings that req does not set, so
// a header backend turned bearer carries no stale header name.
func applyBackendUpdate(b *store.Backend, req *admin.UpdateBackendRequest) {
	if req.Hosts != nil {
		b.Hosts = append([]string(nil), req.Hosts...)
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&b.Upstream, req.Upstream)
	set(&b.UpstreamCA, req.UpstreamCA)
	if req.AllowPlainHTTP != nil {
		b.AllowPlainHTTP = *req.AllowPlainHTTP
	}
	if req.Inject != nil && *req.Inject != b.Inject {
		b.Inject = *req.Inject
		b.Header, b.Prefix, b.QueryParam, b.BasicUser, b.OAuth2 = "", "", "", "", nil
	}
	set(&b.Header, req.Header)
	set(&b.Prefix, req.Prefix)
	set(&b.QueryParam, req.QueryParam)
	set(&b.BasicUser, req.BasicUser)
	if req.OAuth2 != nil {
		o := *req.OAuth2
		if cur := b.OAuth2; cur != nil {
			// Fields the request leaves empty keep their value.
			if o.TokenURL == "" {
				o.TokenURL = cur.TokenURL
			}
			if o.ClientID == "" {
				o.ClientID = cur.ClientID
			}
			if o.Scopes == nil {
				o.Scopes = cur.Scopes
			}
			if o.Params == nil {
				o.Params = cur.Params
			}
		}
		b.OAuth2 = &o
	}
}
