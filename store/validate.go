package store

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidateName checks an object name (backend, agent, IdP): 1 to 63 characters
// of a-z, 0-9, '.', '_' and '-', starting with a letter or digit.
func ValidateName(field, name string) error {
	if name == "" {
		return invalid(field, "", "a name is required")
	}
	if !nameRE.MatchString(name) {
		return invalid(field, name, "use 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// NormalizeHost lower-cases a host name and removes one trailing dot.
func NormalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// ValidateHost checks a normalised backend host: a DNS name of letters,
// digits and hyphens, or a wildcard "*.name" whose base has at least two labels.
// IP addresses are refused: agents reach backends by name (SNI).
func ValidateHost(h string) error {
	if h == "" {
		return invalid("host", "", "a host name is required")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return invalid("host", h, "an IP address cannot be intercepted; register the name agents call")
	}
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name = rest
		if strings.Count(name, ".") < 1 {
			return invalid("host", h, "a wildcard needs a base of at least two labels, like *.crm.example.com")
		}
	}
	if len(name) > 253 {
		return invalid("host", h, "a DNS name is at most 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if err := validateLabel(label); err != nil {
			return invalid("host", h, err.Error())
		}
	}
	return nil
}

func validateLabel(l string) error {
	if l == "" {
		return fmt.Errorf("empty label")
	}
	if len(l) > 63 {
		return fmt.Errorf("label %q is longer than 63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %q has %q; use letters, digits and '-'", l, c)
		}
	}
	return nil
}

// MatchHost reports whether host (normalised) is served by pattern: equal, or
// pattern "*.base" and host is exactly one label more than base.
func MatchHost(pattern, host string) bool {
	if base, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, found := strings.Cut(host, ".")
		return found && label != "" && rest == base
	}
	return pattern == host
}

// ParseRate parses "N/s", "N/m" or "N/h" into events per second.
// The empty string means no limit and returns 0.
func ParseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	v, err := strconv.Atoi(n)
	if !ok || err != nil || v <= 0 {
		return 0, invalid("rate", s, "use a positive whole number per unit: N/s, N/m or N/h")
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return 0, invalid("rate", s, "the unit must be s, m or h")
	}
	return float64(v) / per.Seconds(), nil
}

func validateLimits(rate string, burst int) error {
	if _, err := ParseRate(rate); err != nil {
		return err
	}
	if burst < 0 {
		return invalid("burst", strconv.Itoa(burst), "must be zero or positive")
	}
	if burst > 0 && rate == "" {
		return invalid("burst", strconv.Itoa(burst), "a burst needs a --rate")
	}
	return nil
}

var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Headers a credential may never be injected into: they carry routing or
// framing, and the proxy strips or rewrites them.
var reservedHeaders = []string{
	"connection", "content-length", "host", "keep-alive", "proxy-connection",
	"te", "trailer", "transfer-encoding", "upgrade", "cookie", "proxy-authorization",
}

// ValidateUpstream checks an upstream URL: scheme://host[:port] with https, or
// http when allowPlain is set.
func ValidateUpstream(raw string, allowPlain bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return invalid("upstream", raw, "use an absolute URL like https://api.internal:8443")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowPlain {
			return invalid("upstream", raw, "plain http sends the credential unencrypted; use https, or pass --allow-plain-http if this network is trusted")
		}
	default:
		return invalid("upstream", raw, "the scheme must be https (or http with --allow-plain-http)")
	}
	if u.User != nil {
		return invalid("upstream", u.Redacted(), "credentials do not belong in the URL; they are injected from the store")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return invalid("upstream", raw, "give only scheme://host[:port]; the request path is kept as the agent sent it")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("upstream", raw, "the port must be 1-65535")
		}
	}
	return nil
}

// Normalize puts a backend's fields in canonical form (host case, header case).
func (b *Backend) Normalize() {
	for i, h := range b.Hosts {
		b.Hosts[i] = NormalizeHost(h)
	}
	if b.Inject == "" {
		b.Inject = InjectBearer
	}
	b.Upstream = strings.TrimSuffix(b.Upstream, "/")
}

// Validate checks a normalised backend on its own; cross-object rules (a host
// owned by another backend) are the Store's.
func (b *Backend) Validate() error {
	if err := ValidateName("name", b.Name); err != nil {
		return err
	}
	if len(b.Hosts) == 0 {
		return invalid("host", "", "at least one --host is required: the name agents call, like api.openai.com")
	}
	seen := map[string]bool{}
	for _, h := range b.Hosts {
		if err := ValidateHost(h); err != nil {
			return err
		}
		if seen[h] {
			return invalid("host", h, "listed twice")
		}
		seen[h] = true
	}
	if b.Upstream != "" {
		if err := ValidateUpstream(b.Upstream, b.AllowPlainHTTP); err != nil {
			return err
		}
	}
	if b.UpstreamCA != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(b.UpstreamCA)) {
			return invalid("upstream-ca", "", "no PEM certificate found; give a file with -----BEGIN CERTIFICATE-----")
		}
	}
	if b.Timeout < 0 {
		return invalid("timeout", b.Timeout.Std().String(), "must be zero (default) or positive")
	}
	if err := validateLimits(b.Rate, b.Burst); err != nil {
		return err
	}
	return b.validateInjection()
}

func (b *Backend) validateInjection() error {
	unused := func(field, value string) error {
		if value != "" {
			return invalid(field, value, fmt.Sprintf("does not apply to --inject %s", b.Inject))
		}
		return nil
	}
	var errs []error
	switch b.Inject {
	case InjectHeader:
		if b.Header == "" {
			return invalid("header", "", "--inject header needs --header NAME, like x-api-key")
		}
		if !headerNameRE.MatchString(b.Header) {
			return invalid("header", b.Header, "not a valid HTTP header name")
		}
		if slices.Contains(reservedHeaders, strings.ToLower(b.Header)) {
			return invalid("header", b.Header, "this header carries routing or framing and cannot hold a credential")
		}
		errs = append(errs, unused("query-param", b.QueryParam), unused("basic-user", b.BasicUser))
	case InjectBearer:
		errs = append(errs, unused("header", b.Header), unused("prefix", b.Prefix), unused("query-param", b.QueryParam), unused("basic-user", b.BasicUser))
	case InjectBasic:
		if strings.Contains(b.BasicUser, ":") {
			return invalid("basic-user", b.BasicUser, "a Basic user name cannot contain ':'")
		}
		errs = append(errs, unused("header", b.Header), unused("prefix", b.Prefix), unused("query-param", b.QueryParam))
	case InjectQuery:
		if b.QueryParam == "" {
			return invalid("query-param", "", "--inject query needs --query-param NAME, like key")
		}
		if strings.ContainsAny(b.QueryParam, "&=#? ") {
			return invalid("query-param", b.QueryParam, "not a valid query parameter name")
		}
		errs = append(errs, unused("header", b.Header), unused("prefix", b.Prefix), unused("basic-user", b.BasicUser))
	case InjectOAuth2:
		if b.OAuth2 == nil || b.OAuth2.TokenURL == "" {
			return invalid("token-url", "", "--inject oauth2 needs --token-url")
		}
		if err := validateIssuerLikeURL("token-url", b.OAuth2.TokenURL); err != nil {
			return err
		}
		if b.OAuth2.ClientID == "" {
			return invalid("client-id", "", "--inject oauth2 needs --client-id")
		}
		errs = append(errs, unused("header", b.Header), unused("prefix", b.Prefix), unused("query-param", b.QueryParam), unused("basic-user", b.BasicUser))
	default:
		return invalid("inject", string(b.Inject), "use one of header, bearer, basic, query, oauth2")
	}
	if b.Inject != InjectOAuth2 && b.OAuth2 != nil {
		return invalid("token-url", b.OAuth2.TokenURL, fmt.Sprintf("does not apply to --inject %s", b.Inject))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// validateIssuerLikeURL accepts https URLs, and http only for loopback hosts
// (local test issuers and token endpoints).
func validateIssuerLikeURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return invalid(field, raw, "use an absolute https URL")
	}
	if u.User != nil {
		return invalid(field, u.Redacted(), "credentials do not belong in the URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return invalid(field, raw, "must be https (plain http is accepted only for loopback addresses)")
	}
	return invalid(field, raw, "must be https")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Normalize puts an agent's fields in canonical form.
func (a *Agent) Normalize() {
	a.Description = strings.TrimSpace(a.Description)
}

// Validate checks an agent on its own; whether its IdP exists is the Store's rule.
func (a *Agent) Validate() error {
	if err := ValidateName("name", a.Name); err != nil {
		return err
	}
	if len(a.Description) > 256 {
		return invalid("description", "", "at most 256 characters")
	}
	if (a.IdP == "") != (a.Subject == "") {
		return invalid("subject", a.Subject, "--idp and --subject go together")
	}
	if a.IdP != "" {
		if err := ValidateName("idp", a.IdP); err != nil {
			return err
		}
		if len(a.Subject) > 256 {
			return invalid("subject", "", "at most 256 characters")
		}
	}
	if a.MaxConcurrent < 0 {
		return invalid("max-concurrent", strconv.Itoa(a.MaxConcurrent), "must be zero (unlimited) or positive")
	}
	return validateLimits(a.Rate, a.Burst)
}

var methodRE = regexp.MustCompile(`^[A-Z]+$`)

// Normalize upper-cases methods and fills the "everything" defaults:
// no methods means every method, no paths means every path.
func (g *Grant) Normalize() {
	for i, m := range g.Methods {
		g.Methods[i] = strings.ToUpper(strings.TrimSpace(m))
	}
	if len(g.Methods) == 0 {
		g.Methods = []string{"*"}
	}
	if len(g.Paths) == 0 {
		g.Paths = []string{"/**"}
	}
	slices.Sort(g.Methods)
	g.Methods = slices.Compact(g.Methods)
}

// Validate checks a grant on its own; that its agent and backend exist is the Store's rule.
func (g *Grant) Validate() error {
	if err := ValidateName("agent", g.Agent); err != nil {
		return err
	}
	if err := ValidateName("backend", g.Backend); err != nil {
		return err
	}
	for _, m := range g.Methods {
		if m != "*" && !methodRE.MatchString(m) {
			return invalid("method", m, "use an HTTP method like GET or POST, or * for every method")
		}
	}
	for _, p := range g.Paths {
		if err := ValidatePathPattern(p); err != nil {
			return err
		}
	}
	return validateLimits(g.Rate, g.Burst)
}

// ValidatePathPattern checks a grant path glob: it starts with '/', and '*'
// (one segment) or '**' (any number of segments) stand only as whole segments
// or inside one segment ("*.json").
func ValidatePathPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return invalid("path", p, "a path pattern starts with '/', like /v1/** or /v1/models")
	}
	if strings.ContainsAny(p, "?#\\ \t\r\n") {
		return invalid("path", p, "a path pattern cannot contain '?', '#', '\\' or spaces")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return invalid("path", p, "'.' and '..' segments are not allowed; patterns match normalised paths")
		}
		if strings.Contains(seg, "**") && seg != "**" {
			return invalid("path", p, "'**' must be a whole segment, like /v1/**")
		}
	}
	return nil
}

// Validate checks a token record.
func (t *Token) Validate() error {
	if t.ID == "" {
		return invalid("id", "", "a token id is required")
	}
	if err := ValidateName("agent", t.Agent); err != nil {
		return err
	}
	if len(t.Label) > 64 {
		return invalid("label", "", "at most 64 characters")
	}
	if len(t.Hash) == 0 {
		return invalid("hash", "", "a token hash is required")
	}
	return nil
}

// IdP claims agw can map to an agent.
var IdPClaims = []string{"sub", "cid", "azp", "appid", "client_id"}

// Normalize fills the IdP's default claim.
func (p *IdP) Normalize() {
	if p.Claim == "" {
		p.Claim = "sub"
	}
	p.Issuer = strings.TrimSuffix(p.Issuer, "/")
}

// Validate checks an identity provider.
func (p *IdP) Validate() error {
	if err := ValidateName("name", p.Name); err != nil {
		return err
	}
	if err := validateIssuerLikeURL("issuer", p.Issuer); err != nil {
		return err
	}
	if p.Audience == "" {
		return invalid("audience", "", "--audience is required: the audience your IdP puts in tokens for the gateway (not the backend's)")
	}
	if !slices.Contains(IdPClaims, p.Claim) {
		return invalid("claim", p.Claim, "use one of "+strings.Join(IdPClaims, ", "))
	}
	return nil
}

// Secret length bounds. A secret shorter than MinSecretBytes is refused
// while scrubbing is on: the scrubber redacts every occurrence of the secret
// in responses, and a short one ("x", "abc") occurs by chance in ordinary
// text, which it would corrupt. Real credentials are far longer.
const (
	MinSecretBytes = 8
	MaxSecretBytes = 64 << 10
)

// ValidateSecret checks a backend credential before it is sealed: not empty,
// not only whitespace, at most MaxSecretBytes, and at least MinSecretBytes
// unless the backend's scrubbing is off (noScrub). Its errors never contain
// the secret.
func ValidateSecret(secret []byte, noScrub bool) error {
	switch {
	case len(secret) == 0:
		return invalid("secret", "", "the secret is empty; pass it with --secret-stdin, --secret-file or --secret-env; nothing was changed")
	case len(strings.TrimSpace(string(secret))) == 0:
		return invalid("secret", "", "the secret is only whitespace; check what was piped or typed; nothing was changed")
	case len(secret) > MaxSecretBytes:
		return invalid("secret", "", "longer than 64 KiB; a credential is not that large")
	case len(secret) < MinSecretBytes && !noScrub:
		return invalid("secret", "", fmt.Sprintf(
			"%d bytes is shorter than the minimum of %d: scrubbing would redact every occurrence of so short a string in the backend's responses and corrupt them; give the full credential, or turn scrubbing off for this backend (--no-scrub) to store it anyway",
			len(secret), MinSecretBytes))
	}
	return nil
}
