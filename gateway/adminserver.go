package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/gateway/admin"
	"github.com/agw-dev/agw/store"
)

// adminServer is the server half of the admin API. Every mutation goes to
// the store first (with its audit event, in one transaction) and then to the
// in-memory state, under writeMu so the two stay in the same order.
type adminServer struct {
	d       *daemon
	policy  adminPolicy
	writeMu sync.Mutex
}

// maxAdminBody bounds admin request bodies; the largest legitimate one is a
// backend with an upstream CA bundle.
const maxAdminBody = 1 << 20

func (s *adminServer) handler() http.Handler {
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
	route("GET", admin.PathAudit, s.audit)
	route("POST", admin.PathAuditVerify, s.auditVerify)
	route("GET", admin.PathCA, s.ca)
	route("GET", admin.PathDNSExport, s.dnsExport)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: no admin endpoint %s %s (client and daemon versions may differ)", store.ErrNotFound, r.Method, r.URL.Path))
	})
	return s.authorize(mux)
}

// authorize refuses callers whose kernel-reported uid is not allowed.
func (s *adminServer) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerFrom(r.Context())
		if ok, why := s.policy.allows(p); !ok {
			s.d.log.Warn("admin request refused", "uid", p.UID, "pid", p.PID, "method", r.Method, "path", r.URL.Path)
			s.writeError(w, r, fmt.Errorf("%w: %s", store.ErrForbidden, why))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *adminServer) writeError(w http.ResponseWriter, r *http.Request, err error) {
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
		s.d.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
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
func (s *adminServer) adminEvent(r *http.Request, action, target string) store.AuditEvent {
	p := peerFrom(r.Context())
	return store.AuditEvent{
		Time:     s.d.now(),
		Kind:     store.KindAdmin,
		Action:   action,
		Target:   target,
		PeerUID:  p.UID,
		PeerPID:  p.PID,
		Decision: store.Allow,
	}
}

// mutate runs one store write and its state update in order, then wakes
// audit followers (the write stored the admin event).
func (s *adminServer) mutate(fn func() error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	s.d.audit.Notify()
	return nil
}

func (s *adminServer) status(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.d.status())
	return nil
}

func (s *adminServer) listBackends(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.d.state.listBackends())
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

func (s *adminServer) showBackend(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rt := s.d.state.backend(name)
	if rt == nil {
		return fmt.Errorf("backend %q: %w (see `agw backend list`)", name, store.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, admin.BackendDetail{
		Backend:  rt.backend,
		Grants:   nonNil(s.d.state.listGrants("", name)),
		Warnings: backendWarnings(&rt.backend),
	})
	return nil
}

func secretBytes(in admin.SecretInput) ([]byte, error) {
	if in.Value == "" {
		return nil, &store.FieldError{Field: "secret", Reason: "the secret is empty; pass it with --secret-stdin, --secret-file or --secret-env"}
	}
	if len(in.Value) > 64<<10 {
		return nil, &store.FieldError{Field: "secret", Reason: "longer than 64 KiB"}
	}
	return []byte(in.Value), nil
}

func (s *adminServer) addBackend(w http.ResponseWriter, r *http.Request) error {
	var req admin.AddBackendRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	secret, err := secretBytes(req.Secret)
	if err != nil {
		return err
	}
	b := req.Backend
	b.Normalize()
	if err := b.Validate(); err != nil {
		return err
	}
	sealed, err := s.d.keys.Seal(secret)
	if err != nil {
		return fmt.Errorf("seal credential: %w", err)
	}
	err = s.mutate(func() error {
		c := &store.Credential{Backend: b.Name, Sealed: sealed}
		if _, err := s.d.st.CreateBackend(r.Context(), &b, c, s.adminEvent(r, "backend.add", b.Name)); err != nil {
			return err
		}
		s.d.state.putBackend(b, crypto.NewSecret(secret))
		return nil
	})
	if err != nil {
		return err
	}
	s.d.log.Info("backend added", "backend", b.Name, "hosts", b.Hosts, "uid", peerFrom(r.Context()).UID)
	writeJSON(w, http.StatusCreated, b)
	return nil
}

func (s *adminServer) updateBackend(w http.ResponseWriter, r *http.Request) error {
	var req admin.UpdateBackendRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	var b store.Backend
	err := s.mutate(func() error {
		rt := s.d.state.backend(name)
		if rt == nil {
			return fmt.Errorf("backend %q: %w", name, store.ErrNotFound)
		}
		b = rt.backend
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
		if err := b.Validate(); err != nil {
			return err
		}
		if _, err := s.d.st.UpdateBackend(r.Context(), &b, s.adminEvent(r, "backend.update", name)); err != nil {
			return err
		}
		s.d.state.updateBackendConfig(b)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *adminServer) rotateBackend(w http.ResponseWriter, r *http.Request) error {
	var req admin.RotateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	secret, err := secretBytes(req.Secret)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	sealed, err := s.d.keys.Seal(secret)
	if err != nil {
		return fmt.Errorf("seal credential: %w", err)
	}
	var b *store.Backend
	err = s.mutate(func() error {
		c := &store.Credential{Backend: name, Sealed: sealed}
		var err error
		if b, _, err = s.d.st.RotateCredential(r.Context(), c, s.adminEvent(r, "backend.rotate", name)); err != nil {
			return err
		}
		s.d.state.putBackend(*b, crypto.NewSecret(secret))
		return nil
	})
	if err != nil {
		return err
	}
	s.d.log.Info("credential rotated", "backend", name, "version", b.CredentialVersion, "uid", peerFrom(r.Context()).UID)
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *adminServer) removeBackend(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.mutate(func() error {
		if _, err := s.d.st.DeleteBackend(r.Context(), name, s.adminEvent(r, "backend.remove", name)); err != nil {
			return err
		}
		s.d.state.removeBackend(name)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *adminServer) listAgents(w http.ResponseWriter, r *http.Request) error {
	now := s.d.now()
	agents := s.d.state.listAgents()
	out := make([]admin.AgentSummary, 0, len(agents))
	for _, a := range agents {
		out = append(out, admin.AgentSummary{
			Agent:    a,
			Tokens:   s.d.state.activeTokenCount(a.Name, now),
			Grants:   len(s.d.state.listGrants(a.Name, "")),
			LastSeen: s.d.state.seen(a.Name),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *adminServer) showAgent(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	a := s.d.state.agent(name)
	if a == nil {
		return fmt.Errorf("agent %q: %w (see `agw agent list`)", name, store.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, admin.AgentDetail{
		Agent:  *a,
		Grants: nonNil(s.d.state.listGrants(name, "")),
		Tokens: nonNil(s.d.state.listTokens(name)),
	})
	return nil
}

func (s *adminServer) addAgent(w http.ResponseWriter, r *http.Request) error {
	var a store.Agent
	if err := decodeBody(r, &a); err != nil {
		return err
	}
	a.Normalize()
	if err := a.Validate(); err != nil {
		return err
	}
	err := s.mutate(func() error {
		if _, err := s.d.st.CreateAgent(r.Context(), &a, s.adminEvent(r, "agent.add", a.Name)); err != nil {
			return err
		}
		s.d.state.putAgent(a)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *adminServer) updateAgent(w http.ResponseWriter, r *http.Request) error {
	var req admin.UpdateAgentRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	var a store.Agent
	err := s.mutate(func() error {
		cur := s.d.state.agent(name)
		if cur == nil {
			return fmt.Errorf("agent %q: %w", name, store.ErrNotFound)
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
			return err
		}
		if _, err := s.d.st.UpdateAgent(r.Context(), &a, s.adminEvent(r, action, name)); err != nil {
			return err
		}
		s.d.state.putAgent(a)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *adminServer) removeAgent(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.mutate(func() error {
		if _, err := s.d.st.DeleteAgent(r.Context(), name, s.adminEvent(r, "agent.remove", name)); err != nil {
			return err
		}
		s.d.state.removeAgent(name)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *adminServer) listGrants(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nonNil(s.d.state.listGrants(r.URL.Query().Get("agent"), r.URL.Query().Get("backend"))))
	return nil
}

func (s *adminServer) putGrant(w http.ResponseWriter, r *http.Request) error {
	var g store.Grant
	if err := decodeBody(r, &g); err != nil {
		return err
	}
	g.Normalize()
	if err := g.Validate(); err != nil {
		return err
	}
	err := s.mutate(func() error {
		if _, err := s.d.st.PutGrant(r.Context(), &g, s.adminEvent(r, "grant.add", g.Agent+"/"+g.Backend)); err != nil {
			return err
		}
		s.d.state.putGrant(g)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, g)
	return nil
}

func (s *adminServer) removeGrant(w http.ResponseWriter, r *http.Request) error {
	agent, backend := r.PathValue("agent"), r.PathValue("backend")
	err := s.mutate(func() error {
		if _, err := s.d.st.DeleteGrant(r.Context(), agent, backend, s.adminEvent(r, "grant.remove", agent+"/"+backend)); err != nil {
			return err
		}
		s.d.state.removeGrant(agent, backend)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *adminServer) listTokens(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nonNil(s.d.state.listTokens(r.URL.Query().Get("agent"))))
	return nil
}

func (s *adminServer) mintToken(w http.ResponseWriter, r *http.Request) error {
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
	now := s.d.now()
	t := store.Token{ID: id, Agent: req.Agent, Label: req.Label, Hash: hash, CreatedAt: now}
	if req.TTL > 0 {
		t.ExpiresAt = now.Add(req.TTL.Std())
	}
	err = s.mutate(func() error {
		if _, err := s.d.st.CreateToken(r.Context(), &t, s.adminEvent(r, "token.mint", id+" ("+req.Agent+")")); err != nil {
			return err
		}
		s.d.state.putToken(t)
		return nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, admin.MintedToken{Token: t, Value: string(value.Reveal())})
	return nil
}

func (s *adminServer) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var t *store.Token
	err := s.mutate(func() error {
		var err error
		if t, _, err = s.d.st.RevokeToken(r.Context(), id, s.d.now(), s.adminEvent(r, "token.revoke", id)); err != nil {
			return err
		}
		s.d.state.putToken(*t)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *adminServer) listIdPs(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.d.state.listIdPs())
	return nil
}

func (s *adminServer) addIdP(w http.ResponseWriter, r *http.Request) error {
	var p store.IdP
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	err := s.mutate(func() error {
		if _, err := s.d.st.CreateIdP(r.Context(), &p, s.adminEvent(r, "idp.add", p.Name)); err != nil {
			return err
		}
		s.d.state.putIdP(p)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *adminServer) removeIdP(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.mutate(func() error {
		if _, err := s.d.st.DeleteIdP(r.Context(), name, s.adminEvent(r, "idp.remove", name)); err != nil {
			return err
		}
		s.d.state.removeIdP(name)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *adminServer) ca(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(s.d.ca.CertPEM)
	return err
}

func (s *adminServer) dnsExport(w http.ResponseWriter, r *http.Request) error {
	var buf strings.Builder
	if err := s.d.exportDNS(&buf, r.URL.Query().Get("format")); err != nil {
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
