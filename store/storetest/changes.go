package storetest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// step is one mutation of script: the revision it returned and the changes
// its change set must carry.
type step struct {
	what string
	rev  store.Revision
	want []store.Change
}

// script runs a mutation of every kind on a fresh store, each object in the
// state the mutation reported, and checks that every mutation returns a
// revision above the last and that Load reports it.
func script(t *testing.T, s store.Store) []step {
	t.Helper()
	ctx := t.Context()
	var steps []step
	add := func(what string, rev store.Revision, err error, want ...store.Change) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := len(steps); n > 0 && rev <= steps[n-1].rev {
			t.Fatalf("%s returned revision %d, not above the previous %d (%s)", what, rev, steps[n-1].rev, steps[n-1].what)
		}
		if rev == 0 {
			t.Fatalf("%s returned revision 0", what)
		}
		if got := mustLoad(t, s).Revision; got != rev {
			t.Fatalf("after %s (revision %d) Load's revision is %d", what, rev, got)
		}
		steps = append(steps, step{what, rev, want})
	}
	put := func(kind store.ObjectKind, obj any) store.Change {
		switch o := obj.(type) {
		case *store.Backend:
			return store.Change{Kind: kind, Name: o.Name, Backend: clonePtr(o)}
		case *store.Credential:
			return store.Change{Kind: kind, Name: o.Backend, Credential: clonePtr(o)}
		case *store.Agent:
			return store.Change{Kind: kind, Name: o.Name, Agent: clonePtr(o)}
		case *store.Grant:
			return store.Change{Kind: kind, GrantAgent: o.Agent, Name: o.Backend, Grant: clonePtr(o)}
		case *store.Token:
			return store.Change{Kind: kind, Name: o.ID, Token: clonePtr(o)}
		case *store.IdP:
			return store.Change{Kind: kind, Name: o.Name, IdP: clonePtr(o)}
		}
		panic(fmt.Sprintf("no change for %T", obj))
	}
	gone := func(kind store.ObjectKind, name string) store.Change {
		return store.Change{Kind: kind, Deleted: true, Name: name}
	}

	p := newIdP(idpCorp)
	rev, err := s.CreateIdP(ctx, p, ev("idp.add", idpCorp))
	add("create idp", rev, err, put(store.KindIdP, p))

	crm, crmCred := newBackend(backendCRM, "crm.example.com"), sealed("crm-v1")
	rev, err = s.CreateBackend(ctx, crm, crmCred, ev("backend.add", backendCRM))
	add("create backend", rev, err, put(store.KindBackend, crm), put(store.KindCredential, crmCred))

	bot := &store.Agent{Name: agentBot}
	rev, err = s.CreateAgent(ctx, bot, ev("agent.add", agentBot))
	add("create agent", rev, err, put(store.KindAgent, bot))

	sso := &store.Agent{Name: agentSSO, IdP: idpCorp, Subject: "client-1"}
	rev, err = s.CreateAgent(ctx, sso, ev("agent.add", agentSSO))
	add("create agent with idp", rev, err, put(store.KindAgent, sso))

	g := &store.Grant{Agent: agentBot, Backend: backendCRM}
	rev, err = s.PutGrant(ctx, g, ev("grant.add", agentBot+"/"+backendCRM))
	add("put grant", rev, err, put(store.KindGrant, g))

	tk := newToken(tokenBot, agentBot)
	rev, err = s.CreateToken(ctx, tk, ev("token.mint", tokenBot))
	add("create token", rev, err, put(store.KindToken, tk))

	crm2 := newBackend(backendCRM, "crm.example.com", "api.crm.example.com")
	crm2.Rate = "10/s"
	rev, err = s.UpdateBackend(ctx, crm2, ev("backend.update", backendCRM))
	add("update backend", rev, err, put(store.KindBackend, crm2))

	crmCred2 := &store.Credential{Backend: backendCRM, Sealed: []byte("age-sealed:crm-v2")}
	crm3, rev, err := s.RotateCredential(ctx, crmCred2, ev("backend.rotate", backendCRM))
	add("rotate credential", rev, err, put(store.KindBackend, crm3), put(store.KindCredential, crmCred2))

	bot2 := &store.Agent{Name: agentBot, Disabled: true}
	rev, err = s.UpdateAgent(ctx, bot2, ev("agent.disable", agentBot))
	add("update agent", rev, err, put(store.KindAgent, bot2))

	g2 := &store.Grant{Agent: agentBot, Backend: backendCRM, Methods: []string{"get"}, Paths: []string{"/v1/**"}}
	rev, err = s.PutGrant(ctx, g2, ev("grant.add", agentBot+"/"+backendCRM))
	add("replace grant", rev, err, put(store.KindGrant, g2))

	revoked, rev, err := s.RevokeToken(ctx, tokenBot, time.Now(), ev("token.revoke", tokenBot))
	add("revoke token", rev, err, put(store.KindToken, revoked))

	rev, err = s.DeleteGrant(ctx, agentBot, backendCRM, ev("grant.remove", agentBot+"/"+backendCRM))
	add("delete grant", rev, err, store.Change{Kind: store.KindGrant, Deleted: true, GrantAgent: agentBot, Name: backendCRM})

	hr, hrCred := newBackend(backendHR, "hr.corp.net"), sealed("hr-v1")
	rev, err = s.CreateBackend(ctx, hr, hrCred, ev("backend.add", backendHR))
	add("create second backend", rev, err, put(store.KindBackend, hr), put(store.KindCredential, hrCred))

	g3 := &store.Grant{Agent: agentSSO, Backend: backendHR}
	rev, err = s.PutGrant(ctx, g3, ev("grant.add", agentSSO+"/"+backendHR))
	add("grant second backend", rev, err, put(store.KindGrant, g3))

	tk2 := newToken(tokenSSO, agentSSO)
	rev, err = s.CreateToken(ctx, tk2, ev("token.mint", tokenSSO))
	add("create second token", rev, err, put(store.KindToken, tk2))

	// Deletes are one change each, whatever depended on them.
	rev, err = s.DeleteAgent(ctx, agentSSO, ev("agent.remove", agentSSO))
	add("delete agent with grant and token", rev, err, gone(store.KindAgent, agentSSO))

	rev, err = s.DeleteBackend(ctx, backendHR, ev("backend.remove", backendHR))
	add("delete backend with credential", rev, err, gone(store.KindBackend, backendHR))

	rev, err = s.DeleteIdP(ctx, idpCorp, ev("idp.remove", idpCorp))
	add("delete idp", rev, err, gone(store.KindIdP, idpCorp))
	return steps
}

func clonePtr[T any](p *T) *T {
	c := *p
	return &c
}

// changeKey orders a change set's changes for comparison: the interface
// does not order the changes of one transaction.
func changeKey(c store.Change) string {
	return string(c.Kind) + "\x00" + c.GrantAgent + "\x00" + c.Name
}

// changeText renders a change for comparison and messages: its JSON, with
// the sealed bytes and token hash the domain types keep out of JSON.
func changeText(c store.Change) string {
	js, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprintf("unencodable change %+v: %v", c, err)
	}
	var extra bytes.Buffer
	if c.Credential != nil {
		fmt.Fprintf(&extra, " sealed=%q", c.Credential.Sealed)
	}
	if c.Token != nil {
		fmt.Fprintf(&extra, " hash=%q", c.Token.Hash)
	}
	return string(js) + extra.String()
}

// checkChangeSet compares a delivered change set with the step it must
// report.
func checkChangeSet(t *testing.T, got store.ChangeSet, want step) {
	t.Helper()
	if got.Revision != want.rev {
		t.Errorf("change set at revision %d, want %d (%s)", got.Revision, want.rev, want.what)
		return
	}
	render := func(cs []store.Change) []string {
		cs = slices.Clone(cs)
		slices.SortFunc(cs, func(a, b store.Change) int { return cmp.Compare(changeKey(a), changeKey(b)) })
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = changeText(c)
		}
		return out
	}
	g, w := render(got.Changes), render(want.want)
	if !slices.Equal(g, w) {
		t.Errorf("revision %d (%s) changes:\n got %v\nwant %v", want.rev, want.what, g, w)
	}
}

// checkDelivered checks sets are exactly steps, in order, with no gaps.
func checkDelivered(t *testing.T, sets []store.ChangeSet, steps []step) {
	t.Helper()
	var got, want []store.Revision
	for _, cs := range sets {
		got = append(got, cs.Revision)
	}
	for _, st := range steps {
		want = append(want, st.rev)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered revisions %v, want %v", got, want)
	}
	for i := range sets {
		checkChangeSet(t, sets[i], steps[i])
	}
}
