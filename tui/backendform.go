package tui

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// updatable are the fields the admin API's backend update changes. The
// edit form shows the others read-only, with updateNote saying why.
var updatable = map[int]bool{bfTimeout: true, bfRate: true, bfBurst: true, bfScrub: true}

const (
	notUpdatable = "(read-only)"
	updateNote   = "Only timeout, rate, burst and scrub can be changed here: the admin API updates no other field yet. " +
		"Rotate the secret with r."
)

// modeNames are the inject modes, the options of the inject field.
func modeNames() []string {
	names := make([]string, len(store.InjectModes))
	for i, m := range store.InjectModes {
		names[i] = string(m)
	}
	return names
}

// openAdd opens the backend form: empty on bearer, the mode without fields
// of its own, to add one; or filled with backend b to edit it.
func (s *backendsScreen) openAdd(b *store.Backend) {
	s.rotating, s.editing = "", nil
	v := store.Backend{Inject: store.InjectBearer}
	title := "Add a backend"
	if b != nil {
		v = *b
		s.editing = &v
		title = "Edit backend " + b.Name
	}
	scrub, plain := "yes", "no"
	if v.NoScrub {
		scrub = "no"
	}
	if v.AllowPlainHTTP {
		plain = "yes"
	}
	ca := ""
	if v.UpstreamCA != "" {
		ca = "a PEM bundle is set"
	}
	burst := ""
	if v.Burst != 0 {
		burst = strconv.Itoa(v.Burst)
	}
	timeout := ""
	if v.Timeout != 0 {
		timeout = time.Duration(v.Timeout).String()
	}
	var o store.OAuth2
	if v.OAuth2 != nil {
		o = *v.OAuth2
	}
	var params []string
	for k, val := range o.Params {
		params = append(params, k+"="+val)
	}
	slices.Sort(params)
	specs := []fieldSpec{
		{label: "name", value: v.Name, placeholder: "openai"},
		{label: "hosts", value: strings.Join(v.Hosts, ", "), placeholder: "api.openai.com, *.openai.azure.com"},
		{label: "upstream", value: v.Upstream, placeholder: "empty: the host itself on :443"},
		{label: "plain http", value: plain, options: []string{"no", "yes"}},
		{label: "upstream CA", value: ca, placeholder: "empty: system roots; or a local PEM file path"},
		{label: "timeout", value: timeout, placeholder: "empty: the gateway's default; or e.g. 30s, 2m"},
		{label: "rate", value: v.Rate, placeholder: "empty: no limit; or N/s, N/m or N/h for all agents, e.g. 10/s"},
		{label: "burst", value: burst, placeholder: "requests allowed at once above the rate, e.g. 20 (empty: 0)"},
		{label: "scrub", value: scrub, options: []string{"yes", "no"}},
		{label: "inject", value: string(v.Inject), options: modeNames()},
		{label: "header", value: v.Header, placeholder: "header mode: header name, e.g. X-Api-Key"},
		{label: "prefix", value: v.Prefix, placeholder: `header mode: optional text before the secret, e.g. "Token "`, verbatim: true},
		{label: "basic user", value: v.BasicUser, placeholder: "basic mode: user name (the secret is the password)"},
		{label: "query param", value: v.QueryParam, placeholder: "query mode: parameter name, e.g. key"},
		{label: "token url", value: o.TokenURL, placeholder: "oauth2 mode: token endpoint, https://…/token"},
		{label: "client id", value: o.ClientID, placeholder: "oauth2 mode: client id"},
		{label: "scopes", value: strings.Join(o.Scopes, " "), placeholder: "oauth2 mode: optional, e.g. read write"},
		{label: "token params", value: strings.Join(params, " "), placeholder: "oauth2 mode: optional k=v pairs, e.g. audience=https://…"},
		{label: "secret", secret: true},
	}
	if b != nil {
		for i := range specs {
			if !updatable[i] {
				specs[i].readonly = notUpdatable
			}
		}
	}
	s.form = newForm(s.c, title, specs...)
	s.form.note = "The secret is sealed by the daemon and can never be read back."
	if b != nil {
		s.form.note = updateNote
		s.form.show(bfSecret, false)
	}
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

// scrubOff reports whether the form f turns response scrubbing off.
func scrubOff(f *form) bool {
	return f.value(bfScrub) == "no"
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
	if s.editing != nil {
		f.show(bfSecret, false)
	}
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
// sends it. A rejected form keeps everything typed, the secret too.
func (s *backendsScreen) submitAdd() tea.Cmd {
	f, api := s.form, s.c.api
	req, bad, err := addRequest(f)
	if err != nil {
		f.fail(err)
		f.focusOn(bad)
		return nil
	}
	f.busy = true
	name := req.Backend.Name
	return act("add backend "+name, "added backend "+name, func(ctx context.Context) error {
		_, err := api.AddBackend(ctx, req)
		return err
	})
}

// submitEdit sends the fields of the edit form that changed, and says
// which ones did.
func (s *backendsScreen) submitEdit() tea.Cmd {
	f, api, old := s.form, s.c.api, *s.editing
	nb := old
	if bad, err := limits(f, &nb); err != nil {
		f.fail(err)
		f.focusOn(bad)
		return nil
	}
	var req admin.UpdateBackendRequest
	var changed []string
	if nb.Timeout != old.Timeout {
		req.Timeout = &nb.Timeout
		changed = append(changed, fmt.Sprintf("timeout %s → %s", orDefault(time.Duration(old.Timeout)), orDefault(time.Duration(nb.Timeout))))
	}
	if nb.Rate != old.Rate {
		req.Rate = &nb.Rate
		changed = append(changed, fmt.Sprintf("rate %s → %s", orNone(old.Rate), orNone(nb.Rate)))
	}
	if nb.Burst != old.Burst {
		req.Burst = &nb.Burst
		changed = append(changed, fmt.Sprintf("burst %d → %d", old.Burst, nb.Burst))
	}
	if nb.NoScrub != old.NoScrub {
		req.NoScrub = &nb.NoScrub
		changed = append(changed, fmt.Sprintf("scrub %s → %s", yesNo(!old.NoScrub), yesNo(!nb.NoScrub)))
	}
	if len(changed) == 0 {
		f.fail(errors.New("nothing changed: edit a field, or press esc to leave the backend as it is"))
		return nil
	}
	f.busy = true
	name := old.Name
	return act("change backend "+name, "changed backend "+name+": "+strings.Join(changed, ", "), func(ctx context.Context) error {
		_, err := api.UpdateBackend(ctx, name, req)
		return err
	})
}

func orDefault(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return d.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// limits reads the timeout, rate, burst and scrub fields of f into b; on
// error it also returns the field to fix.
func limits(f *form, b *store.Backend) (int, error) {
	timeout, err := parseTimeout(f.value(bfTimeout))
	if err != nil {
		return bfTimeout, err
	}
	b.Timeout = store.Duration(timeout)
	b.Rate = f.value(bfRate)
	if _, err := store.ParseRate(b.Rate); err != nil {
		return bfRate, fmt.Errorf("rate %q: want N/s, N/m or N/h, like 10/s, or leave it empty for no limit", b.Rate)
	}
	b.Burst = 0
	if burst := f.value(bfBurst); burst != "" {
		if b.Burst, err = strconv.Atoi(burst); err != nil || b.Burst < 0 {
			return bfBurst, fmt.Errorf("burst %q: want a whole number of requests, like 20, or leave it empty", burst)
		}
	}
	if b.Burst > 0 && b.Rate == "" {
		// The daemon refuses this too: a burst is only the slack above a rate.
		return bfBurst, fmt.Errorf("burst %d needs a rate: type a rate like 10/s, or clear burst", b.Burst)
	}
	b.NoScrub = scrubOff(f)
	return 0, nil
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
		if f.value(bfPlainHTTP) != "yes" {
			return fail(bfPlainHTTP, "an http:// upstream gets requests and the secret unencrypted: choose yes in plain http to allow it, or use https://")
		}
		b.AllowPlainHTTP = true
	}
	if path := f.value(bfUpstreamCA); path != "" {
		var err error
		if b.UpstreamCA, err = readUpstreamCA(path); err != nil {
			return admin.AddBackendRequest{}, bfUpstreamCA, err
		}
	}
	if bad, err := limits(f, &b); err != nil {
		return admin.AddBackendRequest{}, bad, err
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
