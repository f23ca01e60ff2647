package tui

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// openAddForm starts the TUI on the Backends screen with the add form open.
func openAddForm(t *testing.T, api *fakeAPI) *harness {
	t.Helper()
	h := start(t, api, 0)
	h.press("2")
	h.waitFor("hr-api.corp.net")
	h.press("a")
	h.waitFor("Add a backend")
	return h
}

// fill types values into the visible fields from the focused one on, as a
// user would: clear the field, type, enter. Enter on the last field submits.
func (h *harness) fill(values ...string) {
	for _, v := range values {
		h.press("ctrl+u")
		if v != "" {
			h.typ(v)
		}
		h.press("enter")
	}
}

// addForm is the add form of a finished run; it fails the test when the
// form was closed.
func addForm(t *testing.T, m *model) *form {
	t.Helper()
	s := m.screens[1].(*backendsScreen)
	if s.form == nil {
		t.Fatal("the add form closed")
	}
	return s.form
}

// writeCA writes a self-signed CA certificate as PEM and returns its path
// and text.
func writeCA(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test upstream CA"},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	text := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	path := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, text
}

// TestAddBackendModes fills the add form for every inject mode and checks
// the request that reaches the admin API.
func TestAddBackendModes(t *testing.T) {
	const secret = "s3cr3t-Typed-Into-The-Form"
	caPath, caText := writeCA(t)
	tests := []struct {
		name string
		// values for the visible fields after hosts: upstream, plain http
		// (for an http:// upstream only), upstream CA, timeout, rate, burst
		// (with a rate only), scrub, inject, the mode's fields, then the
		// secret.
		values []string
		want   store.Backend
	}{
		{
			name:   "bearer",
			values: []string{"", "", "", "", "yes", "bearer", secret},
			want:   store.Backend{Inject: store.InjectBearer},
		},
		{
			name:   "header with prefix, upstream CA and timeout",
			values: []string{"https://10.1.2.3:8443", caPath, "45s", "", "yes", "Header", "Authorization", "Token ", secret},
			want: store.Backend{Upstream: "https://10.1.2.3:8443", UpstreamCA: caText, Timeout: store.Duration(45 * time.Second),
				Inject: store.InjectHeader, Header: "Authorization", Prefix: "Token "},
		},
		{
			// plain http shows after an http:// upstream.
			name:   "plain http upstream",
			values: []string{"HTTP://10.0.0.9:8080", "yes", "", "", "", "yes", "bearer", secret},
			want:   store.Backend{Upstream: "HTTP://10.0.0.9:8080", AllowPlainHTTP: true, Inject: store.InjectBearer},
		},
		{
			name:   "rate and burst",
			values: []string{"", "", "", "10/s", "20", "yes", "bearer", secret},
			want:   store.Backend{Inject: store.InjectBearer, Rate: "10/s", Burst: 20},
		},
		{
			name:   "rate without burst",
			values: []string{"", "", "", "600/h", "", "yes", "bearer", secret},
			want:   store.Backend{Inject: store.InjectBearer, Rate: "600/h"},
		},
		{
			name:   "basic",
			values: []string{"", "", "", "", "yes", "basic", "svc-agw", secret},
			want:   store.Backend{Inject: store.InjectBasic, BasicUser: "svc-agw"},
		},
		{
			name:   "basic without a user",
			values: []string{"", "", "", "", "yes", "basic", "", secret},
			want:   store.Backend{Inject: store.InjectBasic},
		},
		{
			name:   "query",
			values: []string{"", "", "", "", "yes", "query", "api_key", secret},
			want:   store.Backend{Inject: store.InjectQuery, QueryParam: "api_key"},
		},
		{
			name: "oauth2",
			values: []string{"", "", "2m", "", "yes", "oauth2", "https://login.example.com/oauth2/token", "agw-client",
				"read, write  admin", "audience=https://api.example.com resource=urn:x=1", secret},
			want: store.Backend{Timeout: store.Duration(2 * time.Minute), Inject: store.InjectOAuth2, OAuth2: &store.OAuth2{
				TokenURL: "https://login.example.com/oauth2/token",
				ClientID: "agw-client",
				Scopes:   []string{"read", "write", "admin"},
				Params:   map[string]string{"audience": "https://api.example.com", "resource": "urn:x=1"},
			}},
		},
		{
			name:   "oauth2 without scopes or params",
			values: []string{"", "", "", "", "yes", "oauth2", "http://127.0.0.1:9000/token", "agw-client", "", "", secret},
			want: store.Backend{Inject: store.InjectOAuth2, OAuth2: &store.OAuth2{
				TokenURL: "http://127.0.0.1:9000/token", ClientID: "agw-client"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI()
			h := openAddForm(t, api)
			h.fill("mode-test", "api.mode.example")
			h.fill(tc.values...)
			h.waitFor("added backend mode-test")
			m := h.finish()

			want := tc.want
			want.Name, want.Hosts = "mode-test", []string{"api.mode.example"}
			wantReq := admin.AddBackendRequest{Backend: want, Secret: admin.SecretInput{Value: secret}}
			if len(api.added) != 1 || !reflect.DeepEqual(api.added[0], wantReq) {
				t.Errorf("AddBackend got %+v\nwant one call with %+v", api.added, wantReq)
			}
			if bytes.Contains(h.out.bytes(), []byte(secret)) || strings.Contains(m.View(), secret) {
				t.Error("the secret was rendered")
			}
		})
	}
}

// TestAddBackendModeFields checks that the form shows only the chosen
// mode's fields and sends only those, even after switching modes.
func TestAddBackendModeFields(t *testing.T) {
	api := newFakeAPI()
	h := openAddForm(t, api)
	h.fill("switch", "api.switch.example", "", "", "", "", "yes", "header", "X-Api-Key", "Token ")
	h.waitFor("prefix")

	// Back to inject (prefix, header, inject), then on to query.
	h.press("shift+tab", "shift+tab", "shift+tab")
	h.fill("query")
	h.waitFor("query mode: parameter name")
	h.fill("key", "hunter2")
	h.waitFor("added backend switch")
	h.finish()

	want := store.Backend{Name: "switch", Hosts: []string{"api.switch.example"}, Inject: store.InjectQuery, QueryParam: "key"}
	if len(api.added) != 1 || !reflect.DeepEqual(api.added[0].Backend, want) {
		t.Errorf("AddBackend got %+v, want one call with %+v", api.added, want)
	}

	t.Run("oauth2 fits 80x24", func(t *testing.T) {
		h := openAddForm(t, newFakeAPI())
		h.fill("idp-api", "api.idp.example", "", "", "", "", "yes", "oauth2", "", "agw-client", "", "", "hunter2")
		h.waitFor("oauth2 mode needs the token url")
		m := h.abort()
		for _, label := range []string{"token url", "client id", "scopes", "token params", "secret", "needs the token url"} {
			if !strings.Contains(m.View(), label) {
				t.Errorf("the oauth2 form does not show %q", label)
			}
		}
		for _, label := range []string{"header mode", "basic user", "query param"} {
			if strings.Contains(m.View(), label) {
				t.Errorf("the oauth2 form shows %q, a field of another mode", label)
			}
		}
		golden(t, m)
	})
}

// TestAddBackendInvalid checks the form's own checks: each refuses with a
// message saying what to fix, sends nothing and keeps everything typed,
// the secret too.
func TestAddBackendInvalid(t *testing.T) {
	caPath, _ := writeCA(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(notPEM, []byte("just some text, no certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values []string // after hosts, as in TestAddBackendModes
		want   string
		field  int // where the focus goes to fix it
	}{
		{"header without name", []string{"", "", "", "", "yes", "header", "", "", "pw"}, "header mode needs the header name", bfHeader},
		{"query without parameter", []string{"", "", "", "", "yes", "query", "", "pw"}, "query mode needs the parameter name", bfQueryParam},
		{"query parameter with =", []string{"", "", "", "", "yes", "query", "a=b", "pw"}, `query param "a=b": a parameter name cannot hold`, bfQueryParam},
		{"basic user with colon", []string{"", "", "", "", "yes", "basic", "me:you", "pw"}, "cannot contain ':'", bfBasicUser},
		{"oauth2 without token url", []string{"", "", "", "", "yes", "oauth2", "", "id", "", "", "pw"}, "oauth2 mode needs the token url", bfTokenURL},
		{"oauth2 without client id", []string{"", "", "", "", "yes", "oauth2", "https://idp.example/token", "", "", "", "pw"}, "oauth2 mode needs the client id", bfClientID},
		{"token param without =", []string{"", "", "", "", "yes", "oauth2", "https://idp.example/token", "id", "", "audience", "pw"}, `token param "audience": use key=value`, bfTokenParams},
		{"http upstream without consent", []string{"http://10.0.0.9:8080", "", "", "", "", "yes", "bearer", "pw"}, "an http:// upstream gets requests and the secret unencrypted: choose yes in plain http", bfPlainHTTP},
		{"rate without unit", []string{"", "", "", "10", "", "yes", "bearer", "pw"}, `rate "10": want N/s, N/m or N/h, like 10/s`, bfRate},
		{"rate per day", []string{"", "", "", "100/d", "", "yes", "bearer", "pw"}, `rate "100/d": want N/s, N/m or N/h, like 10/s`, bfRate},
		{"zero rate", []string{"", "", "", "0/s", "", "yes", "bearer", "pw"}, `rate "0/s": want N/s, N/m or N/h`, bfRate},
		{"burst not a number", []string{"", "", "", "10/s", "lots", "yes", "bearer", "pw"}, `burst "lots": want a whole number of requests, like 20`, bfBurst},
		{"negative burst", []string{"", "", "", "10/s", "-3", "yes", "bearer", "pw"}, `burst "-3": want a whole number`, bfBurst},
		{"bad timeout", []string{"", "", "soon", "", "yes", "bearer", "pw"}, `timeout "soon": give a duration like 30s`, bfTimeout},
		{"negative timeout", []string{"", "", "-5s", "", "yes", "bearer", "pw"}, `timeout "-5s"`, bfTimeout},
		{"missing CA file", []string{"", missing, "", "", "yes", "bearer", "pw"}, "upstream CA: open " + missing + ": no such file or directory; give the path of a PEM file", bfUpstreamCA},
		{"CA file without PEM", []string{"", notPEM, "", "", "yes", "bearer", "pw"}, "upstream CA: " + notPEM + " holds no PEM certificate", bfUpstreamCA},
		{"CA path is a directory", []string{"", dir, "", "", "yes", "bearer", "pw"}, "upstream CA: read " + dir + ": is a directory", bfUpstreamCA},
		{"no secret", []string{"", caPath, "", "", "yes", "bearer", ""}, "type the secret", bfSecret},
		{"no oauth2 client secret", []string{"", "", "", "", "yes", "oauth2", "https://idp.example/token", "id", "", "", ""}, "type the secret: the OAuth2 client secret", bfSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI()
			h := openAddForm(t, api)
			h.fill("bad", "api.bad.example")
			h.fill(tc.values...)
			h.waitFor("✗ ")
			m := h.abort()

			f := addForm(t, m)
			if !strings.Contains(f.err, tc.want) {
				t.Errorf("form error = %q, want it to contain %q", f.err, tc.want)
			}
			if f.focus != tc.field {
				t.Errorf("focus on %s, want %s", f.fields[f.focus].label, f.fields[tc.field].label)
			}
			if len(api.added) != 0 {
				t.Errorf("an invalid form reached the API: %+v", api.added)
			}
			if v, want := f.fields[bfSecret].input.Value(), tc.values[len(tc.values)-1]; v != want {
				t.Errorf("the secret field holds %q after the refusal, want %q as typed", v, want)
			}
			if f.value(bfName) != "bad" || f.value(bfHosts) != "api.bad.example" {
				t.Error("the form lost what was typed")
			}
			if f.busy {
				t.Error("the form stays busy after a refusal")
			}
		})
	}
}

// TestAddBackendDaemonRefuses checks that the daemon's own refusal is shown
// in the form as an error, and the form stays open with everything typed,
// the secret included, so fixing one field is enough.
func TestAddBackendDaemonRefuses(t *testing.T) {
	const secret = "s3cr3t-The-Daemon-Refused"
	api := newFakeAPI()
	api.addErr = &admin.Error{Status: 400, Code: admin.CodeInvalid,
		Message: `invalid header "Host": this header carries routing or framing and cannot hold a credential`}
	h := openAddForm(t, api)
	h.fill("hosty", "api.hosty.example", "", "", "", "", "yes", "header", "Host", "", secret)
	h.waitFor("could not add backend hosty")
	m := h.abort()

	f := addForm(t, m)
	want := `could not add backend hosty: invalid header "Host": this header carries routing or framing and cannot hold a credential`
	if f.err != want {
		t.Errorf("form error = %q\nwant %q", f.err, want)
	}
	if len(api.added) != 1 {
		t.Errorf("AddBackend calls = %d, want 1", len(api.added))
	}
	if v := f.fields[bfSecret].input.Value(); v != secret {
		t.Errorf("the secret field holds %q after the refusal, want what was typed", v)
	}
	if !strings.Contains(m.View(), "✗ Error: could not add backend hosty") {
		t.Errorf("the refusal is not shown as an error:\n%s", m.View())
	}
	if m.flash != "" && !m.flashErr {
		t.Errorf("the status bar reports %q as a success", m.flash)
	}
	if f.value(bfHeader) != "Host" || f.value(bfName) != "hosty" {
		t.Error("the form lost what was typed")
	}
	if bytes.Contains(h.out.bytes(), []byte(secret)) {
		t.Error("the secret was rendered")
	}
}

// TestAddBackendBurstNeedsRate checks that a burst left behind when its rate
// is cleared stays on screen and is refused, as the daemon refuses it.
func TestAddBackendBurstNeedsRate(t *testing.T) {
	api := newFakeAPI()
	h := openAddForm(t, api)
	h.fill("limits", "api.limits.example", "", "", "", "10/s", "5")
	h.press("shift+tab", "shift+tab") // back to rate
	h.fill("", "5", "yes", "bearer", "pw")
	h.waitFor("✗ ")
	m := h.abort()

	f := addForm(t, m)
	want := "burst 5 needs a rate: type a rate like 10/s, or clear burst"
	if !strings.Contains(f.err, want) {
		t.Errorf("form error = %q, want it to contain %q", f.err, want)
	}
	if f.focus != bfBurst {
		t.Errorf("focus on %s, want burst", f.fields[f.focus].label)
	}
	if !strings.Contains(m.View(), "burst  5") {
		t.Errorf("the burst to fix is not on screen:\n%s", m.View())
	}
	if len(api.added) != 0 {
		t.Errorf("a burst without a rate reached the API: %+v", api.added)
	}
}

// TestAddBackendScrub checks that scrubbing stays on unless the operator
// chooses no, and that turning it off shows what it gives away.
func TestAddBackendScrub(t *testing.T) {
	const warning = "! scrub is off: a backend that echoes the secret hands it to the agent"
	tests := []struct {
		name    string
		scrub   string
		noScrub bool
	}{
		{"left on", "yes", false},
		{"nothing typed", "", false},
		{"turned off", "no", true},
		{"turned off by its initial", "N", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI()
			h := openAddForm(t, api)
			h.fill("echo", "api.echo.example", "", "", "", "", tc.scrub)
			if tc.noScrub {
				h.waitFor(warning)
			}
			h.fill("bearer", "pw")
			h.waitFor("added backend echo")
			h.finish()

			if len(api.added) != 1 || api.added[0].Backend.NoScrub != tc.noScrub {
				t.Errorf("AddBackend got %+v, want one call with NoScrub %v", api.added, tc.noScrub)
			}
			if shown := bytes.Contains(h.out.bytes(), []byte(warning)); shown != tc.noScrub {
				t.Errorf("warning shown = %v, want %v", shown, tc.noScrub)
			}
		})
	}
}

// TestAddBackendTallestForm checks that the form with every optional field
// shown, the scrub warning and an error still fits 80x24.
func TestAddBackendTallestForm(t *testing.T) {
	h := openAddForm(t, newFakeAPI())
	h.fill("tall", "api.tall.example", "http://10.0.0.9:8080", "yes", "", "30s", "10/s", "20", "no",
		"oauth2", "", "agw-client", "read", "audience=x", "hunter2")
	h.waitFor("oauth2 mode needs the token url")
	m := h.abort()
	for _, want := range []string{"plain http", "burst", "token params", "secret", "! scrub is off", "needs the token url"} {
		if !strings.Contains(m.View(), want) {
			t.Errorf("the tallest form does not show %q", want)
		}
	}
	golden(t, m)
}
