package adminserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/audit"
	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

const canary = "sk-canary-adminserver-0123456789"

// newServer runs the real admin server on a Unix socket, over a real store
// and the view the daemon keeps current from it, and returns a real client.
func newServer(t *testing.T) (*admin.Client, *state.State) {
	t.Helper()
	dir, err := os.MkdirTemp("", "agw-admin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	st, err := badgerstore.Open(filepath.Join(dir, "db"), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := crypto.NewCA("agw test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	view, err := state.Load(snap, keys)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	alog := audit.New(audit.Config{Sink: audit.StoreSink{Store: st}})
	projDone := make(chan struct{})
	go func() { defer close(projDone); _ = (&state.Projector{Store: st, Keys: keys, State: view}).Run(ctx) }()
	srv, err := New(Config{
		Store: st, State: view, Keys: keys, CA: ca, Audit: alog,
		Status: func() admin.Status { return admin.Status{Version: "roundtrip"} },
		ExportDNS: func(w io.Writer, format string) error {
			_, err := fmt.Fprintf(w, "# %s: %s\n", format, strings.Join(view.HostList(), " "))
			return err
		},
		Stopping: make(chan struct{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	ln, err := Listen(sock, srv.GroupGID())
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		<-projDone
		alog.Close()
		st.Close()
	})
	return &admin.Client{Socket: sock, Timeout: 10 * time.Second}, view
}

// Every admin route, through the real client and the real server: what a
// write returns is what the view (and so the next request) sees, errors
// come back as the store's sentinels, and the secret never comes back.
func TestAdminRoundTrip(t *testing.T) {
	t.Parallel()
	c, view := newServer(t)
	ctx := t.Context()
	var seen []any // every answer, searched for the secret at the end
	keep := func(v any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, v)
		return v
	}

	st := keep(c.Status(ctx)).(*admin.Status)
	if st.Version != "roundtrip" {
		t.Errorf("status %+v", st)
	}
	b := keep(c.AddBackend(ctx, admin.AddBackendRequest{
		Backend: store.Backend{Name: "api", Hosts: []string{"api.example.com"}, Inject: store.InjectBearer},
		Secret:  admin.SecretInput{Value: canary},
	})).(*store.Backend)
	if b.CredentialVersion != 1 || view.RouteHost("api.example.com") == nil {
		t.Fatalf("added backend %+v not in the view", b)
	}
	if _, err := c.AddBackend(ctx, admin.AddBackendRequest{Backend: store.Backend{Name: "api", Hosts: []string{"x.example.com"}, Inject: store.InjectBearer}, Secret: admin.SecretInput{Value: canary}}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second add: %v, want ErrExists", err)
	}
	if _, err := c.AddBackend(ctx, admin.AddBackendRequest{Backend: store.Backend{Name: "bad", Hosts: []string{"10.0.0.1"}, Inject: store.InjectBearer}, Secret: admin.SecretInput{Value: canary}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("add with an IP host: %v, want ErrInvalid", err)
	}
	rate := "5/s"
	keep(c.UpdateBackend(ctx, "api", admin.UpdateBackendRequest{Rate: &rate}))
	if view.Backend("api").Backend.Rate != "5/s" {
		t.Error("backend update not in the view")
	}
	rb := keep(c.RotateBackend(ctx, "api", admin.SecretInput{Value: canary + "-v2"})).(*store.Backend)
	if rb.CredentialVersion != 2 || string(view.Backend("api").Secret.Reveal()) != canary+"-v2" {
		t.Errorf("rotation: version %d", rb.CredentialVersion)
	}
	keep(c.Backends(ctx))
	keep(c.Backend(ctx, "api"))
	if _, err := c.Backend(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("show unknown backend: %v", err)
	}

	keep(c.AddAgent(ctx, store.Agent{Name: "bot", Description: "test agent"}))
	disabled := true
	keep(c.UpdateAgent(ctx, "bot", admin.UpdateAgentRequest{Disabled: &disabled}))
	if a := view.Agent("bot"); a == nil || !a.Disabled {
		t.Error("disable not in the view")
	}
	enabled := false
	keep(c.UpdateAgent(ctx, "bot", admin.UpdateAgentRequest{Disabled: &enabled}))
	keep(c.Agents(ctx))
	keep(c.PutGrant(ctx, store.Grant{Agent: "bot", Backend: "api", Methods: []string{"GET"}, Paths: []string{"/v1/**"}}))
	if view.Grant("bot", "api") == nil {
		t.Error("grant not in the view")
	}
	if _, err := c.PutGrant(ctx, store.Grant{Agent: "ghost", Backend: "api", Methods: []string{"GET"}, Paths: []string{"/**"}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("grant for an unknown agent: %v", err)
	}
	keep(c.Grants(ctx, "bot"))
	m := keep(c.MintToken(ctx, admin.MintRequest{Agent: "bot", Label: "rt"})).(*admin.MintedToken)
	if !crypto.LooksLikeToken(m.Value) || view.Token(m.ID) == nil {
		t.Fatalf("minted %+v not in the view", m.Token)
	}
	keep(c.Tokens(ctx, "bot"))
	keep(c.Agent(ctx, "bot"))
	rt := keep(c.RevokeToken(ctx, m.ID)).(*store.Token)
	if rt.RevokedAt.IsZero() || view.Token(m.ID).RevokedAt.IsZero() {
		t.Error("revocation not in the view")
	}

	keep(c.AddIdP(ctx, store.IdP{Name: "okta", Issuer: "https://idp.example.com", Audience: "api://agw"}))
	keep(c.IdPs(ctx))
	if err := c.RemoveIdP(ctx, "okta"); err != nil || view.IdP("okta") != nil {
		t.Errorf("remove idp: %v", err)
	}
	pem := keep(c.CA(ctx)).(string)
	if !strings.Contains(pem, "BEGIN CERTIFICATE") || strings.Contains(pem, "PRIVATE") {
		t.Errorf("CA export %q", pem)
	}
	if out := keep(c.DNSExport(ctx, "hosts")).(string); !strings.Contains(out, "api.example.com") {
		t.Errorf("dns export %q", out)
	}
	if v := keep(c.AuditVerify(ctx)).(*admin.AuditVerifyResult); !v.OK || v.Checked == 0 {
		t.Errorf("audit verify %+v", v)
	}
	var actions []string
	if err := c.Audit(ctx, store.AuditQuery{Kind: store.KindAdmin}, false, func(m admin.StreamMessage) error {
		if m.Event != nil {
			actions = append(actions, m.Event.Action)
			seen = append(seen, m.Event)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"backend.add", "backend.rotate", "agent.disable", "grant.add", "token.mint", "token.revoke", "idp.remove"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("admin trail lacks %s: %v", want, actions)
		}
	}

	if err := c.RemoveGrant(ctx, "bot", "api"); err != nil || view.Grant("bot", "api") != nil {
		t.Errorf("remove grant: %v", err)
	}
	if err := c.RemoveAgent(ctx, "bot"); err != nil || view.Agent("bot") != nil || view.Token(m.ID) != nil {
		t.Errorf("remove agent: %v", err)
	}
	if err := c.RemoveBackend(ctx, "api"); err != nil || view.RouteHost("api.example.com") != nil {
		t.Errorf("remove backend: %v", err)
	}
	if err := c.RemoveBackend(ctx, "api"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}

	js, _ := json.Marshal(seen)
	if strings.Contains(string(js), canary) {
		t.Fatal("an admin answer carried the backend secret")
	}
}

// Only the socket's owner (or root, or the admin group) is served; the
// socket is 0600 without an admin group.
func TestAdminSocketMode(t *testing.T) {
	t.Parallel()
	c, _ := newServer(t)
	fi, err := os.Stat(c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	conn, err := net.Dial("unix", c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}
