package storetest

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// testRejects reaches every validation and reference rule through the store
// and checks that the refused write left the state and the audit trail as
// they were.
func testRejects(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	type op func(ctx context.Context, s store.Store) error
	cases := []struct {
		name     string
		do       op
		sentinel error
		words    []string
	}{
		{"backend invalid name", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateBackend(ctx, newBackend("Bad Name", "x.example.com"), sealed("x"), ev("backend.add", "Bad Name")))
		}, store.ErrInvalid, []string{"Bad Name"}},
		{"backend bad host", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateBackend(ctx, newBackend("x", "not a host!"), sealed("x"), ev("backend.add", "x")))
		}, store.ErrInvalid, []string{"host"}},
		{"backend ip host", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateBackend(ctx, newBackend("x", "10.0.0.1"), sealed("x"), ev("backend.add", "x")))
		}, store.ErrInvalid, []string{"10.0.0.1"}},
		{"backend plain http upstream", func(ctx context.Context, s store.Store) error {
			b := newBackend("x", "x.example.com")
			b.Upstream = "http://10.0.0.5:8080"
			return noRev(s.CreateBackend(ctx, b, sealed("x"), ev("backend.add", "x")))
		}, store.ErrInvalid, []string{"allow-plain-http"}},
		{"backend without credential", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateBackend(ctx, newBackend("x", "x.example.com"), &store.Credential{}, ev("backend.add", "x")))
		}, store.ErrInvalid, []string{"secret"}},
		{"backend duplicate name", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateBackend(ctx, newBackend(backendCRM, "other.example.com"), sealed("x"), ev("backend.add", backendCRM)))
		}, store.ErrExists, []string{`"crm"`}},
		{"backend host owned by another", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateBackend(ctx, newBackend("x", "new.example.com", "HR.corp.net."), sealed("x"), ev("backend.add", "x")))
		}, store.ErrExists, []string{"hr.corp.net", `"hr"`}},
		{"update backend host owned by another", func(ctx context.Context, s store.Store) error {
			return noRev(s.UpdateBackend(ctx, newBackend(backendCRM, "crm.example.com", "hr.corp.net"), ev("backend.update", backendCRM)))
		}, store.ErrExists, []string{"hr.corp.net", `"hr"`}},
		{"update missing backend", func(ctx context.Context, s store.Store) error {
			return noRev(s.UpdateBackend(ctx, newBackend("ghost", "ghost.example.com"), ev("backend.update", "ghost")))
		}, store.ErrNotFound, []string{"ghost"}},
		{"update backend invalid", func(ctx context.Context, s store.Store) error {
			b := newBackend(backendCRM, "crm.example.com")
			b.Inject = "smoke"
			return noRev(s.UpdateBackend(ctx, b, ev("backend.update", backendCRM)))
		}, store.ErrInvalid, []string{"smoke"}},
		{"rotate missing backend", func(ctx context.Context, s store.Store) error {
			c := sealed("x")
			c.Backend = "ghost"
			_, err := dropRev(s.RotateCredential(ctx, c, ev("backend.rotate", "ghost")))
			return err
		}, store.ErrNotFound, []string{"ghost"}},
		{"rotate empty credential", func(ctx context.Context, s store.Store) error {
			_, err := dropRev(s.RotateCredential(ctx, &store.Credential{Backend: backendCRM}, ev("backend.rotate", backendCRM)))
			return err
		}, store.ErrInvalid, nil},
		{"delete missing backend", func(ctx context.Context, s store.Store) error {
			return noRev(s.DeleteBackend(ctx, "ghost", ev("backend.remove", "ghost")))
		}, store.ErrNotFound, []string{"ghost"}},
		{"agent invalid name", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateAgent(ctx, &store.Agent{Name: "-bad"}, ev("agent.add", "-bad")))
		}, store.ErrInvalid, []string{"-bad"}},
		{"agent duplicate name", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateAgent(ctx, &store.Agent{Name: agentBot}, ev("agent.add", agentBot)))
		}, store.ErrExists, []string{`"bot"`}},
		{"agent missing idp", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateAgent(ctx, &store.Agent{Name: "x", IdP: "nope", Subject: "s"}, ev("agent.add", "x")))
		}, store.ErrNotFound, []string{"nope"}},
		{"agent duplicate subject", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateAgent(ctx, &store.Agent{Name: "x", IdP: idpCorp, Subject: "client-1"}, ev("agent.add", "x")))
		}, store.ErrExists, []string{"client-1", `"sso"`}},
		{"update agent takes another's subject", func(ctx context.Context, s store.Store) error {
			return noRev(s.UpdateAgent(ctx, &store.Agent{Name: agentBot, IdP: idpCorp, Subject: "client-1"}, ev("agent.update", agentBot)))
		}, store.ErrExists, []string{"client-1", `"sso"`}},
		{"update missing agent", func(ctx context.Context, s store.Store) error {
			return noRev(s.UpdateAgent(ctx, &store.Agent{Name: "ghost"}, ev("agent.update", "ghost")))
		}, store.ErrNotFound, []string{"ghost"}},
		{"delete missing agent", func(ctx context.Context, s store.Store) error {
			return noRev(s.DeleteAgent(ctx, "ghost", ev("agent.remove", "ghost")))
		}, store.ErrNotFound, []string{"ghost"}},
		{"grant missing agent", func(ctx context.Context, s store.Store) error {
			return noRev(s.PutGrant(ctx, &store.Grant{Agent: "ghost", Backend: backendCRM}, ev("grant.add", "ghost/crm")))
		}, store.ErrNotFound, []string{"agent", "ghost"}},
		{"grant missing backend", func(ctx context.Context, s store.Store) error {
			return noRev(s.PutGrant(ctx, &store.Grant{Agent: agentBot, Backend: "ghost"}, ev("grant.add", "bot/ghost")))
		}, store.ErrNotFound, []string{"backend", "ghost"}},
		{"grant bad method", func(ctx context.Context, s store.Store) error {
			return noRev(s.PutGrant(ctx, &store.Grant{Agent: agentBot, Backend: backendCRM, Methods: []string{"GET/1"}}, ev("grant.add", "bot/crm")))
		}, store.ErrInvalid, []string{"GET/1"}},
		{"grant bad path", func(ctx context.Context, s store.Store) error {
			return noRev(s.PutGrant(ctx, &store.Grant{Agent: agentBot, Backend: backendCRM, Paths: []string{"v1/**"}}, ev("grant.add", "bot/crm")))
		}, store.ErrInvalid, []string{"v1/**"}},
		{"delete missing grant", func(ctx context.Context, s store.Store) error {
			return noRev(s.DeleteGrant(ctx, agentBot, backendHR, ev("grant.remove", "bot/hr")))
		}, store.ErrNotFound, []string{"bot", "hr"}},
		{"token missing agent", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateToken(ctx, newToken("tok-x", "ghost"), ev("token.mint", "tok-x")))
		}, store.ErrNotFound, []string{"ghost"}},
		{"token duplicate id", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateToken(ctx, newToken(tokenBot, agentSSO), ev("token.mint", tokenBot)))
		}, store.ErrExists, []string{tokenBot}},
		{"token without hash", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateToken(ctx, &store.Token{ID: "tok-x", Agent: agentBot}, ev("token.mint", "tok-x")))
		}, store.ErrInvalid, []string{"hash"}},
		{"revoke missing token", func(ctx context.Context, s store.Store) error {
			_, err := dropRev(s.RevokeToken(ctx, "ghost", time.Now(), ev("token.revoke", "ghost")))
			return err
		}, store.ErrNotFound, []string{"ghost"}},
		{"idp plain http issuer", func(ctx context.Context, s store.Store) error {
			p := newIdP("x")
			p.Issuer = "http://login.example.com"
			return noRev(s.CreateIdP(ctx, p, ev("idp.add", "x")))
		}, store.ErrInvalid, []string{"issuer"}},
		{"idp duplicate name", func(ctx context.Context, s store.Store) error {
			return noRev(s.CreateIdP(ctx, newIdP(idpCorp), ev("idp.add", idpCorp)))
		}, store.ErrExists, []string{`"corp"`}},
		{"idp delete while used", func(ctx context.Context, s store.Store) error {
			return noRev(s.DeleteIdP(ctx, idpCorp, ev("idp.remove", idpCorp)))
		}, store.ErrConflict, []string{`"corp"`, agentSSO}},
		{"idp delete missing", func(ctx context.Context, s store.Store) error {
			return noRev(s.DeleteIdP(ctx, "ghost", ev("idp.remove", "ghost")))
		}, store.ErrNotFound, []string{"ghost"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			ctx := seed(t, s)
			before := stateOf(t, s)
			err := tc.do(ctx, s)
			wantErr(t, err, tc.sentinel, tc.words...)
			sameState(t, before, stateOf(t, s))
			// The chain continues from the last good write: no seq was burnt.
			must(t, s.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindRequest}}))
			if seq, _ := s.LastAuditSeq(ctx); seq != before.seq+1 {
				t.Errorf("next seq = %d, want %d", seq, before.seq+1)
			}
		})
	}

	t.Run("refused create claims no host", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		err := noRev(s.CreateBackend(ctx, newBackend("x", "new.example.com", "hr.corp.net"), sealed("x"), ev("backend.add", "x")))
		wantErr(t, err, store.ErrExists)
		must(t, noRev(s.CreateBackend(ctx, newBackend("y", "new.example.com"), sealed("y"), ev("backend.add", "y"))))
	})
}

func testBackends(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	t.Run("create fills server fields", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		b := newBackend("api", "API.Example.com.")
		b.CredentialVersion = 7 // server-side: ignored
		c := sealed("api-v1")
		must(t, noRev(s.CreateBackend(ctx, b, c, ev("backend.add", "api"))))
		if b.CredentialVersion != 1 || c.Version != 1 {
			t.Errorf("versions backend=%d credential=%d, want 1 and 1", b.CredentialVersion, c.Version)
		}
		if b.CreatedAt.IsZero() || !b.UpdatedAt.Equal(b.CreatedAt) || !b.CredentialSetAt.Equal(b.CreatedAt) {
			t.Errorf("times created=%v updated=%v credential_set=%v, want all equal and set", b.CreatedAt, b.UpdatedAt, b.CredentialSetAt)
		}
		snap := mustLoad(t, s)
		got, ok := backendIn(snap, "api")
		if !ok || !slices.Equal(got.Hosts, []string{"api.example.com"}) || got.Inject != store.InjectBearer || got.CredentialVersion != 1 {
			t.Errorf("loaded backend = %+v, want normalised host, bearer, version 1", got)
		}
		cr, ok := credentialIn(snap, "api")
		if !ok || cr.Version != 1 || !bytes.Equal(cr.Sealed, c.Sealed) {
			t.Errorf("loaded credential = %+v, want version 1 with the sealed bytes", cr)
		}
	})

	t.Run("update keeps credential and moves hosts", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		before, _ := backendIn(mustLoad(t, s), backendCRM)
		b := newBackend(backendCRM, "api.crm.example.com")
		b.Inject, b.Header = store.InjectHeader, "x-api-key"
		b.CredentialVersion = 99
		must(t, noRev(s.UpdateBackend(ctx, b, ev("backend.update", backendCRM))))
		snap := mustLoad(t, s)
		got, _ := backendIn(snap, backendCRM)
		if got.CredentialVersion != 1 || !got.CreatedAt.Equal(before.CreatedAt) || got.Header != "x-api-key" {
			t.Errorf("updated = %+v, want version 1, original created_at, new header", got)
		}
		if cr, _ := credentialIn(snap, backendCRM); string(cr.Sealed) != "age-sealed:crm-v1" {
			t.Errorf("credential changed by update: %q", cr.Sealed)
		}
		// The hosts it gave up are free; the one it took is not.
		must(t, noRev(s.CreateBackend(ctx, newBackend("crm2", "crm.example.com", "*.crm.example.com"), sealed("x"), ev("backend.add", "crm2"))))
		err := noRev(s.CreateBackend(ctx, newBackend("crm3", "api.crm.example.com"), sealed("x"), ev("backend.add", "crm3")))
		wantErr(t, err, store.ErrExists, "api.crm.example.com", backendCRM)
	})

	t.Run("rotation increments versions", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		for want := 2; want <= 3; want++ {
			c := sealed("crm-new")
			c.Backend = backendCRM
			b, err := dropRev(s.RotateCredential(ctx, c, ev("backend.rotate", backendCRM)))
			must(t, err)
			if b.CredentialVersion != want || c.Version != want || b.CredentialSetAt.IsZero() {
				t.Fatalf("rotate: backend version %d, credential version %d, want %d", b.CredentialVersion, c.Version, want)
			}
		}
		snap := mustLoad(t, s)
		n := 0
		for _, c := range snap.Credentials {
			if c.Backend == backendCRM {
				n++
				if c.Version != 3 || string(c.Sealed) != "age-sealed:crm-new" {
					t.Errorf("loaded credential = %+v, want version 3", c)
				}
			}
		}
		if n != 1 {
			t.Errorf("Load returned %d credentials for %s, want only the current one", n, backendCRM)
		}
		if b, _ := backendIn(snap, backendCRM); b.CredentialVersion != 3 {
			t.Errorf("loaded backend version = %d, want 3", b.CredentialVersion)
		}
	})

	t.Run("delete cascades", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		must(t, noRev(s.PutGrant(ctx, &store.Grant{Agent: agentBot, Backend: backendHR}, ev("grant.add", "bot/hr"))))
		must(t, noRev(s.DeleteBackend(ctx, backendCRM, ev("backend.remove", backendCRM))))
		snap := mustLoad(t, s)
		if _, ok := backendIn(snap, backendCRM); ok {
			t.Error("backend still loaded")
		}
		if _, ok := credentialIn(snap, backendCRM); ok {
			t.Error("credential still loaded")
		}
		if _, ok := grantIn(snap, agentBot, backendCRM); ok {
			t.Error("grant to the deleted backend still loaded")
		}
		if _, ok := grantIn(snap, agentBot, backendHR); !ok {
			t.Error("grant to another backend was removed")
		}
		err := noRev(s.DeleteGrant(ctx, agentBot, backendCRM, ev("grant.remove", "bot/crm")))
		wantErr(t, err, store.ErrNotFound, agentBot, backendCRM)
		// Recreating under the same name starts again at version 1, with the freed hosts.
		b := newBackend(backendCRM, "crm.example.com")
		must(t, noRev(s.CreateBackend(ctx, b, sealed("again"), ev("backend.add", backendCRM))))
		err = noRev(s.DeleteGrant(ctx, agentBot, backendCRM, ev("grant.remove", "bot/crm")))
		wantErr(t, err, store.ErrNotFound, agentBot, backendCRM)
		if cr, _ := credentialIn(mustLoad(t, s), backendCRM); cr.Version != 1 || string(cr.Sealed) != "age-sealed:again" {
			t.Errorf("recreated credential = %+v", cr)
		}
		if _, ok := grantIn(mustLoad(t, s), agentBot, backendCRM); ok {
			t.Error("old grant came back with the recreated backend")
		}
	})
}

func testAgents(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	t.Run("update moves subject and keeps created_at", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		before, _ := agentIn(mustLoad(t, s), agentSSO)
		a := &store.Agent{Name: agentSSO, IdP: idpCorp, Subject: "client-2", Disabled: true, Description: "  moved  "}
		must(t, noRev(s.UpdateAgent(ctx, a, ev("agent.update", agentSSO))))
		got, _ := agentIn(mustLoad(t, s), agentSSO)
		if !got.Disabled || got.Subject != "client-2" || got.Description != "moved" || !got.CreatedAt.Equal(before.CreatedAt) {
			t.Errorf("updated agent = %+v", got)
		}
		// The old subject is free again.
		must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "x", IdP: idpCorp, Subject: "client-1"}, ev("agent.add", "x"))))
	})

	t.Run("delete cascades", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		must(t, noRev(s.PutGrant(ctx, &store.Grant{Agent: agentSSO, Backend: backendCRM}, ev("grant.add", "sso/crm"))))
		must(t, noRev(s.CreateToken(ctx, newToken("tok-sso-2", agentSSO), ev("token.mint", "tok-sso-2"))))
		must(t, noRev(s.DeleteAgent(ctx, agentSSO, ev("agent.remove", agentSSO))))
		snap := mustLoad(t, s)
		if _, ok := agentIn(snap, agentSSO); ok {
			t.Error("agent still loaded")
		}
		for _, g := range snap.Grants {
			if g.Agent == agentSSO {
				t.Errorf("grant %+v survived its agent", g)
			}
		}
		for _, tk := range snap.Tokens {
			if tk.Agent == agentSSO {
				t.Errorf("token %s survived its agent", tk.ID)
			}
		}
		if _, ok := tokenIn(snap, tokenBot); !ok {
			t.Error("another agent's token was removed")
		}
		if _, ok := grantIn(snap, agentBot, backendCRM); !ok {
			t.Error("another agent's grant was removed")
		}
		// The subject is free and the IdP no longer in use; a token id is reusable.
		must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "x", IdP: idpCorp, Subject: "client-1"}, ev("agent.add", "x"))))
		must(t, noRev(s.DeleteAgent(ctx, "x", ev("agent.remove", "x"))))
		must(t, noRev(s.DeleteIdP(ctx, idpCorp, ev("idp.remove", idpCorp))))
		must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: agentSSO}, ev("agent.add", agentSSO))))
		if len(slices.DeleteFunc(mustLoad(t, s).Tokens, func(tk store.Token) bool { return tk.Agent != agentSSO })) != 0 {
			t.Error("recreated agent inherited the old agent's tokens")
		}
		must(t, noRev(s.CreateToken(ctx, newToken(tokenSSO, agentSSO), ev("token.mint", tokenSSO))))
	})

	t.Run("re-created agent and backend do not revive the old ones' tokens and credentials", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		must(t, noRev(s.DeleteAgent(ctx, agentBot, ev("agent.remove", agentBot))))
		must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: agentBot}, ev("agent.add", agentBot))))
		if _, ok := tokenIn(mustLoad(t, s), tokenBot); ok {
			t.Errorf("token %s of the deleted agent is back with the re-created one", tokenBot)
		}
		_, err := dropRev(s.RevokeToken(ctx, tokenBot, time.Time{}, ev("token.revoke", tokenBot)))
		wantErr(t, err, store.ErrNotFound, tokenBot)
		must(t, noRev(s.CreateToken(ctx, newToken("tok-bot-2", agentBot), ev("token.mint", "tok-bot-2"))))
		if tk, ok := tokenIn(mustLoad(t, s), "tok-bot-2"); !ok || tk.Agent != agentBot {
			t.Errorf("the re-created agent's own token is missing")
		}

		for i := range 3 {
			_, err := dropRev(s.RotateCredential(ctx, &store.Credential{Backend: backendHR, Sealed: []byte{'v', byte('2' + i)}}, ev("backend.rotate", backendHR)))
			must(t, err)
		}
		must(t, noRev(s.DeleteBackend(ctx, backendHR, ev("backend.remove", backendHR))))
		must(t, noRev(s.CreateBackend(ctx, newBackend(backendHR, "hr.corp.net"), sealed("hr-new-1"), ev("backend.add", backendHR))))
		c, ok := credentialIn(mustLoad(t, s), backendHR)
		if !ok || c.Version != 1 || string(c.Sealed) != "age-sealed:hr-new-1" {
			t.Errorf("re-created backend's credential = %+v, want its own version 1", c)
		}
		next := sealed("hr-new-2")
		next.Backend = backendHR
		_, err = dropRev(s.RotateCredential(ctx, next, ev("backend.rotate", backendHR)))
		must(t, err)
		c, ok = credentialIn(mustLoad(t, s), backendHR)
		if !ok || c.Version != 2 || string(c.Sealed) != "age-sealed:hr-new-2" {
			t.Errorf("after rotating the re-created backend: %+v, want version 2 with the new secret", c)
		}
	})
}

func testGrantsAndTokens(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	t.Run("put grant replaces", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		before, _ := grantIn(mustLoad(t, s), agentBot, backendCRM)
		if !slices.Equal(before.Methods, []string{"*"}) || !slices.Equal(before.Paths, []string{"/**"}) {
			t.Errorf("default grant = %+v, want every method and path", before)
		}
		g := &store.Grant{Agent: agentBot, Backend: backendCRM, Methods: []string{"post", "get", "GET"}, Paths: []string{"/v1/**"}, Rate: "10/s", Burst: 5}
		must(t, noRev(s.PutGrant(ctx, g, ev("grant.add", "bot/crm"))))
		snap := mustLoad(t, s)
		got, _ := grantIn(snap, agentBot, backendCRM)
		if !slices.Equal(got.Methods, []string{"GET", "POST"}) || !slices.Equal(got.Paths, []string{"/v1/**"}) || got.Rate != "10/s" {
			t.Errorf("replaced grant = %+v", got)
		}
		if !got.CreatedAt.Equal(before.CreatedAt) {
			t.Errorf("replace changed created_at from %v to %v", before.CreatedAt, got.CreatedAt)
		}
		n := 0
		for _, g := range snap.Grants {
			if g.Agent == agentBot && g.Backend == backendCRM {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d grants for bot/crm, want 1", n)
		}
		must(t, noRev(s.DeleteGrant(ctx, agentBot, backendCRM, ev("grant.remove", "bot/crm"))))
		if _, ok := grantIn(mustLoad(t, s), agentBot, backendCRM); ok {
			t.Error("grant still loaded after DeleteGrant")
		}
	})

	t.Run("token stores hash and revokes", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		tk := &store.Token{ID: "tok-exp", Agent: agentBot, Hash: []byte{0, 1, 2, 255}, ExpiresAt: exp}
		must(t, noRev(s.CreateToken(ctx, tk, ev("token.mint", "tok-exp"))))
		if tk.CreatedAt.IsZero() {
			t.Error("CreatedAt not filled")
		}
		got, _ := tokenIn(mustLoad(t, s), "tok-exp")
		if !bytes.Equal(got.Hash, []byte{0, 1, 2, 255}) || !got.ExpiresAt.Equal(exp) || !got.RevokedAt.IsZero() {
			t.Errorf("loaded token = %+v", got)
		}
		at := time.Date(2029, 6, 1, 12, 0, 0, 0, time.UTC)
		r, err := dropRev(s.RevokeToken(ctx, "tok-exp", at, ev("token.revoke", "tok-exp")))
		must(t, err)
		if !r.RevokedAt.Equal(at) || r.Active(at.Add(-time.Hour)) {
			t.Errorf("revoked = %+v, want revoked at %v and inactive", r, at)
		}
		r, err = dropRev(s.RevokeToken(ctx, "tok-exp", at.Add(time.Hour), ev("token.revoke", "tok-exp")))
		must(t, err)
		if !r.RevokedAt.Equal(at) {
			t.Errorf("second revoke moved RevokedAt to %v, want the first %v", r.RevokedAt, at)
		}
		got, _ = tokenIn(mustLoad(t, s), "tok-exp")
		if !got.RevokedAt.Equal(at) || !bytes.Equal(got.Hash, []byte{0, 1, 2, 255}) {
			t.Errorf("loaded revoked token = %+v", got)
		}
		if other, _ := tokenIn(mustLoad(t, s), tokenBot); !other.RevokedAt.IsZero() {
			t.Error("revoke touched another token")
		}
	})
}
