package tui

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// Field positions in the add form. The mode fields follow inject and only
// the chosen mode's are shown, and burst only with a rate, so the form fits
// 80x24 in every mode.
const (
	bfName = iota
	bfHosts
	bfUpstream
	bfPlainHTTP
	bfUpstreamCA
	bfTimeout
	bfRate
	bfBurst
	bfScrub
	bfInject
	bfHeader
	bfPrefix
	bfBasicUser
	bfQueryParam
	bfTokenURL
	bfClientID
	bfScopes
	bfTokenParams
	bfSecret
)

// modeFields are the fields each inject mode uses; bearer uses none.
var modeFields = map[store.InjectMode][]int{
	store.InjectHeader: {bfHeader, bfPrefix},
	store.InjectBasic:  {bfBasicUser},
	store.InjectQuery:  {bfQueryParam},
	store.InjectOAuth2: {bfTokenURL, bfClientID, bfScopes, bfTokenParams},
}

// secretHints say what the secret is in each mode.
var secretHints = map[store.InjectMode]string{
	store.InjectBasic:  "the password; typed, never shown",
	store.InjectOAuth2: "the client secret; typed, never shown",
}

// maxUpstreamCA bounds the PEM file read for an upstream CA; the admin API
// takes at most 1 MiB per request.
const maxUpstreamCA = 512 << 10

// openAdd opens the add form on bearer, the mode without fields of its own.
func (s *backendsScreen) openAdd() {
	s.rotating = ""
	s.form = newForm(s.c, "Add a backend",
		fieldSpec{label: "name", placeholder: "openai"},
		fieldSpec{label: "hosts", placeholder: "api.openai.com, *.openai.azure.com"},
		fieldSpec{label: "upstream", placeholder: "empty: the host itself on :443"},
		fieldSpec{label: "plain http", placeholder: "type yes to send requests and the secret unencrypted"},
		fieldSpec{label: "upstream CA", placeholder: "empty: system roots; or a local PEM file path"},
		fieldSpec{label: "timeout", placeholder: "empty: the gateway's default; or e.g. 30s, 2m"},
		fieldSpec{label: "rate", placeholder: "empty: no limit; or N/s, N/m or N/h for all agents, e.g. 10/s"},
		fieldSpec{label: "burst", placeholder: "requests allowed at once above the rate, e.g. 20 (empty: 0)"},
		fieldSpec{label: "scrub", value: "yes", placeholder: "empty or yes: redact a secret the backend echoes; no: don't"},
		fieldSpec{label: "inject", value: string(store.InjectBearer), placeholder: "header|bearer|basic|query|oauth2"},
		fieldSpec{label: "header", placeholder: "header mode: header name, e.g. X-Api-Key"},
		fieldSpec{label: "prefix", placeholder: `header mode: optional text before the secret, e.g. "Token "`, verbatim: true},
		fieldSpec{label: "basic user", placeholder: "basic mode: user name (the secret is the password)"},
		fieldSpec{label: "query param", placeholder: "query mode: parameter name, e.g. key"},
		fieldSpec{label: "token url", placeholder: "oauth2 mode: token endpoint, https://…/token"},
		fieldSpec{label: "client id", placeholder: "oauth2 mode: client id"},
		fieldSpec{label: "scopes", placeholder: "oauth2 mode: optional, e.g. read write"},
		fieldSpec{label: "token params", placeholder: "oauth2 mode: optional k=v pairs, e.g. audience=https://…"},
		fieldSpec{label: "secret", secret: true},
	)
	s.form.note = "The secret is sealed by the daemon and can never be read back."
	s.showRelevantFields()
}

// typedMode is the inject mode typed in the add form f, lower-cased.
func typedMode(f *form) store.InjectMode {
	return store.InjectMode(strings.ToLower(f.value(bfInject)))
}

// plainUpstream reports whether upstream is an http:// URL.
func plainUpstream(upstream string) bool {
	return len(upstream) >= 7 && strings.EqualFold(upstream[:7], "http://")
}

// scrubOff reports whether the add form f turns response scrubbing off.
func scrubOff(f *form) bool {
	return strings.EqualFold(f.value(bfScrub), "no")
}

// showRelevantFields shows the fields of the inject mode typed so far and
// hides the others; an unfinished mode shows none. The plain-http consent
// shows only for an http:// upstream, burst only with a rate (or once it
// holds a value, so a burst left without its rate can still be seen and
// fixed). Turning scrubbing off shows what that gives away.
func (s *backendsScreen) showRelevantFields() {
	f, mode := s.form, typedMode(s.form)
	f.show(bfPlainHTTP, plainUpstream(f.value(bfUpstream)))
	f.show(bfBurst, f.value(bfRate) != "" || f.value(bfBurst) != "" || f.focus == bfBurst)
	f.warn = ""
	if scrubOff(f) {
		f.warn = "scrub is off: a backend that echoes the secret hands it to the agent"
	}
	for m, fields := range modeFields {
		for _, i := range fields {
			f.show(i, m == mode)
		}
	}
	hint, ok := secretHints[mode]
	if !ok {
		hint = "typed, never shown"
	}
	f.fields[bfSecret].input.Placeholder = hint
}

// submitAdd checks the add form as `agw backend add` checks its flags and
// sends it. The secret is cleared whatever happens.
func (s *backendsScreen) submitAdd() tea.Cmd {
	f, api := s.form, s.c.api
	req, bad, err := addRequest(f)
	typed := f.value(bfSecret) != ""
	f.clearSecrets()
	if err != nil {
		if typed {
			err = fmt.Errorf("%w; the secret was cleared: type it again", err)
		}
		f.fail(err)
		f.focusOn(bad)
		return nil
	}
	f.busy = true
	return act("added backend "+req.Backend.Name, func(ctx context.Context) error {
		_, err := api.AddBackend(ctx, req)
		return err
	})
}

// addRequest builds the request from the add form, checking fields in the
// order they are shown so the first problem named is the topmost; on error
// it also returns the field to fix. Fields of other modes are left out, as
// the daemon refuses them.
func addRequest(f *form) (admin.AddBackendRequest, int, error) {
	b := store.Backend{
		Name:     f.value(bfName),
		Hosts:    splitList(strings.ToLower(f.value(bfHosts))),
		Upstream: f.value(bfUpstream),
		Inject:   typedMode(f),
	}
	fail := func(field int, format string, a ...any) (admin.AddBackendRequest, int, error) {
		return admin.AddBackendRequest{}, field, fmt.Errorf(format, a...)
	}
	switch {
	case b.Name == "":
		return fail(bfName, "give the backend a name")
	case len(b.Hosts) == 0:
		return fail(bfHosts, "give at least one host agents call")
	}
	if plainUpstream(b.Upstream) {
		if !strings.EqualFold(f.value(bfPlainHTTP), "yes") {
			return fail(bfPlainHTTP, "an http:// upstream gets requests and the secret unencrypted: type yes in plain http to allow it, or use https://")
		}
		b.AllowPlainHTTP = true
	}
	timeout, err := parseTimeout(f.value(bfTimeout))
	if err != nil {
		return admin.AddBackendRequest{}, bfTimeout, err
	}
	b.Timeout = store.Duration(timeout)
	if path := f.value(bfUpstreamCA); path != "" {
		if b.UpstreamCA, err = readUpstreamCA(path); err != nil {
			return admin.AddBackendRequest{}, bfUpstreamCA, err
		}
	}
	b.Rate = f.value(bfRate)
	if _, err := store.ParseRate(b.Rate); err != nil {
		return fail(bfRate, "rate %q: want N/s, N/m or N/h, like 10/s, or leave it empty for no limit", b.Rate)
	}
	if burst := f.value(bfBurst); burst != "" {
		if b.Burst, err = strconv.Atoi(burst); err != nil || b.Burst < 0 {
			return fail(bfBurst, "burst %q: want a whole number of requests, like 20, or leave it empty", burst)
		}
	}
	if b.Burst > 0 && b.Rate == "" {
		// The daemon refuses this too: a burst is only the slack above a rate.
		return fail(bfBurst, "burst %d needs a rate: type a rate like 10/s, or clear burst", b.Burst)
	}
	switch scrub := f.value(bfScrub); {
	case scrub == "" || strings.EqualFold(scrub, "yes"):
	case scrubOff(f):
		b.NoScrub = true
	default:
		return fail(bfScrub, "scrub %q: type yes to redact a secret the backend echoes back, or no to let it reach the agent", scrub)
	}

	switch b.Inject {
	case store.InjectHeader:
		b.Header, b.Prefix = f.value(bfHeader), f.value(bfPrefix)
		if b.Header == "" {
			return fail(bfHeader, "header mode needs the header name, like X-Api-Key")
		}
	case store.InjectBearer:
	case store.InjectBasic:
		b.BasicUser = f.value(bfBasicUser)
		if strings.Contains(b.BasicUser, ":") {
			return fail(bfBasicUser, "basic user %q: a Basic user name cannot contain ':'", b.BasicUser)
		}
	case store.InjectQuery:
		b.QueryParam = f.value(bfQueryParam)
		if b.QueryParam == "" {
			return fail(bfQueryParam, "query mode needs the parameter name, like key")
		}
		if strings.ContainsAny(b.QueryParam, "&=#? ") {
			return fail(bfQueryParam, "query param %q: a parameter name cannot hold & = # ? or spaces", b.QueryParam)
		}
	case store.InjectOAuth2:
		o := &store.OAuth2{TokenURL: f.value(bfTokenURL), ClientID: f.value(bfClientID), Scopes: words(f.value(bfScopes))}
		if o.TokenURL == "" {
			return fail(bfTokenURL, "oauth2 mode needs the token url, like https://login.example.com/oauth2/token")
		}
		if o.ClientID == "" {
			return fail(bfClientID, "oauth2 mode needs the client id")
		}
		for _, kv := range words(f.value(bfTokenParams)) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fail(bfTokenParams, "token param %q: use key=value, like audience=https://api.example.com", kv)
			}
			if o.Params == nil {
				o.Params = map[string]string{}
			}
			o.Params[k] = v
		}
		b.OAuth2 = o
	default:
		return fail(bfInject, "inject must be one of %s", modeList())
	}

	secret := f.value(bfSecret)
	if secret == "" {
		switch b.Inject {
		case store.InjectBasic:
			return fail(bfSecret, "type the secret: the Basic-auth password")
		case store.InjectOAuth2:
			return fail(bfSecret, "type the secret: the OAuth2 client secret")
		}
		return fail(bfSecret, "type the secret")
	}
	return admin.AddBackendRequest{Backend: b, Secret: admin.SecretInput{Value: secret}}, 0, nil
}

// modeList is the inject modes as prose: "header, bearer, ... or oauth2".
func modeList() string {
	names := make([]string, len(store.InjectModes))
	for i, m := range store.InjectModes {
		names[i] = string(m)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// parseTimeout reads the upstream timeout: empty or zero is the gateway's
// default; a negative one is refused, as `agw backend add --timeout` does.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("timeout %q: give a duration like 30s or 2m, or leave it empty for the gateway's default", s)
	}
	return d, nil
}

// readUpstreamCA reads the PEM file at path (on this machine, ~ for the
// home directory) and returns its text once it holds a certificate, which
// is the daemon's own test of an upstream CA.
func readUpstreamCA(path string) (string, error) {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, rest)
		}
	}
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("upstream CA: %w; give the path of a PEM file on this machine, or leave it empty", err)
	}
	defer fh.Close()
	pem, err := io.ReadAll(io.LimitReader(fh, maxUpstreamCA+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("upstream CA: %w; give the path of a PEM file on this machine, or leave it empty", err)
	case len(pem) > maxUpstreamCA:
		return "", fmt.Errorf("upstream CA: %s is larger than %d KiB; give a file with only the CA certificates", path, maxUpstreamCA>>10)
	case !x509.NewCertPool().AppendCertsFromPEM(pem):
		return "", fmt.Errorf("upstream CA: %s holds no PEM certificate; give a file with -----BEGIN CERTIFICATE----- blocks", path)
	}
	return string(pem), nil
}

// words splits a field on commas and spaces, dropping blanks.
func words(s string) []string {
	w := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	if len(w) == 0 {
		return nil
	}
	return w
}
