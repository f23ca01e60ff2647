package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateHost(t *testing.T) {
	cases := []struct {
		host    string
		wantErr string // "" means valid
	}{
		{"api.openai.com", ""},
		{"hr", ""},
		{"*.crm.example.com", ""},
		{"a-b.example.com", ""},
		{"", "required"},
		{"10.0.0.1", "IP address"},
		{"::1", "IP address"},
		{"*.com", "two labels"},
		{"not a host", "label"},
		{"-api.example.com", "starts or ends"},
		{"api..example.com", "empty label"},
		{"api.example.com:443", "label"},
		{"a." + strings.Repeat("b", 64) + ".com", "longer than 63"},
		{strings.Repeat("abcdefghi.", 26) + "com", "253"},
		{"api.*.example.com", "label"},
	}
	for _, c := range cases {
		t.Run(c.host, func(t *testing.T) {
			err := ValidateHost(c.host)
			checkErr(t, err, c.wantErr)
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	if got := NormalizeHost(" API.OpenAI.com. "); got != "api.openai.com" {
		t.Errorf("NormalizeHost = %q", got)
	}
}

func TestMatchHost(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "x.api.example.com", false},
		{"*.crm.example.com", "eu.crm.example.com", true},
		{"*.crm.example.com", "crm.example.com", false},
		{"*.crm.example.com", "a.b.crm.example.com", false},
		{"*.crm.example.com", ".crm.example.com", false},
	}
	for _, c := range cases {
		if got := MatchHost(c.pattern, c.host); got != c.want {
			t.Errorf("MatchHost(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	cases := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"", 0, ""},
		{"10/s", 10, ""},
		{"60/m", 1, ""},
		{"3600/h", 1, ""},
		{"0/s", 0, "positive"},
		{"-1/s", 0, "positive"},
		{"10", 0, "positive"},
		{"10/d", 0, "unit"},
		{"x/s", 0, "positive"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseRate(c.in)
			checkErr(t, err, c.wantErr)
			if err == nil && got != c.want {
				t.Errorf("ParseRate(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func validBackend() Backend {
	return Backend{Name: "hr", Hosts: []string{"hr.corp.net"}, Inject: InjectHeader, Header: "X-Api-Key"}
}

func TestBackendValidate(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(b *Backend)
		wantErr string
	}{
		{"valid header mode", func(b *Backend) {}, ""},
		{"valid bearer", func(b *Backend) { b.Inject, b.Header = InjectBearer, "" }, ""},
		{"valid basic", func(b *Backend) { b.Inject, b.Header, b.BasicUser = InjectBasic, "", "x-access-token" }, ""},
		{"valid query", func(b *Backend) { b.Inject, b.Header, b.QueryParam = InjectQuery, "", "key" }, ""},
		{"valid https upstream", func(b *Backend) { b.Upstream = "https://10.0.0.5:8443" }, ""},
		{"valid plain http when allowed", func(b *Backend) { b.Upstream, b.AllowPlainHTTP = "http://10.0.0.5", true }, ""},
		{"valid oauth2", func(b *Backend) {
			b.Inject, b.Header = InjectOAuth2, ""
			b.OAuth2 = &OAuth2{TokenURL: "https://login.example.com/token", ClientID: "c1"}
		}, ""},
		{"bad name", func(b *Backend) { b.Name = "HR Backend" }, "name"},
		{"no hosts", func(b *Backend) { b.Hosts = nil }, "at least one --host"},
		{"duplicate host", func(b *Backend) { b.Hosts = []string{"a.example.com", "a.example.com"} }, "listed twice"},
		{"plain http not allowed", func(b *Backend) { b.Upstream = "http://10.0.0.5" }, "plain http"},
		{"ftp upstream", func(b *Backend) { b.Upstream = "ftp://x.example.com" }, "scheme"},
		{"upstream with credentials", func(b *Backend) { b.Upstream = "https://u:p@x.example.com" }, "do not belong"},
		{"upstream with path", func(b *Backend) { b.Upstream = "https://x.example.com/api" }, "scheme://host"},
		{"upstream bad port", func(b *Backend) { b.Upstream = "https://x.example.com:99999" }, "port"},
		{"upstream CA not PEM", func(b *Backend) { b.UpstreamCA = "not a cert" }, "PEM"},
		{"header mode without header", func(b *Backend) { b.Header = "" }, "needs --header"},
		{"header reserved", func(b *Backend) { b.Header = "Host" }, "routing or framing"},
		{"header not a token", func(b *Backend) { b.Header = "X Api" }, "not a valid HTTP header"},
		{"query without param", func(b *Backend) { b.Inject, b.Header = InjectQuery, "" }, "needs --query-param"},
		{"flag of another mode", func(b *Backend) { b.QueryParam = "key" }, "does not apply"},
		{"basic user with colon", func(b *Backend) { b.Inject, b.Header, b.BasicUser = InjectBasic, "", "a:b" }, "':'"},
		{"oauth2 without token url", func(b *Backend) { b.Inject, b.Header = InjectOAuth2, "" }, "--token-url"},
		{"oauth2 http token url", func(b *Backend) {
			b.Inject, b.Header = InjectOAuth2, ""
			b.OAuth2 = &OAuth2{TokenURL: "http://login.example.com/token", ClientID: "c1"}
		}, "loopback"},
		{"oauth2 without client id", func(b *Backend) {
			b.Inject, b.Header = InjectOAuth2, ""
			b.OAuth2 = &OAuth2{TokenURL: "https://login.example.com/token"}
		}, "--client-id"},
		{"unknown mode", func(b *Backend) { b.Inject = "cookie" }, "one of"},
		{"burst without rate", func(b *Backend) { b.Burst = 5 }, "needs a --rate"},
		{"bad rate", func(b *Backend) { b.Rate = "fast" }, "rate"},
		{"negative timeout", func(b *Backend) { b.Timeout = -1 }, "timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := validBackend()
			c.mutate(&b)
			b.Normalize()
			checkErr(t, b.Validate(), c.wantErr)
		})
	}
}

func TestBackendNormalize(t *testing.T) {
	b := Backend{Name: "x", Hosts: []string{"API.Example.COM."}, Upstream: "https://u.example.com/"}
	b.Normalize()
	if b.Hosts[0] != "api.example.com" || b.Inject != InjectBearer || b.Upstream != "https://u.example.com" {
		t.Errorf("Normalize = %+v", b)
	}
}

func TestGrantValidate(t *testing.T) {
	cases := []struct {
		name    string
		g       Grant
		wantErr string
	}{
		{"defaults", Grant{Agent: "bot", Backend: "hr"}, ""},
		{"methods and globs", Grant{Agent: "bot", Backend: "hr", Methods: []string{"get", "POST"}, Paths: []string{"/v1/**", "/v1/*.json"}}, ""},
		{"bad method", Grant{Agent: "bot", Backend: "hr", Methods: []string{"G3T"}}, "method"},
		{"relative path", Grant{Agent: "bot", Backend: "hr", Paths: []string{"v1/**"}}, "starts with '/'"},
		{"dot segment", Grant{Agent: "bot", Backend: "hr", Paths: []string{"/v1/../admin"}}, "'..'"},
		{"partial double star", Grant{Agent: "bot", Backend: "hr", Paths: []string{"/v1/a**"}}, "whole segment"},
		{"query in pattern", Grant{Agent: "bot", Backend: "hr", Paths: []string{"/v1?x=1"}}, "cannot contain"},
		{"bad agent name", Grant{Agent: "Bot!", Backend: "hr"}, "agent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := c.g
			g.Normalize()
			checkErr(t, g.Validate(), c.wantErr)
		})
	}
	g := Grant{Agent: "bot", Backend: "hr", Methods: []string{"post", "get", "GET"}}
	g.Normalize()
	if strings.Join(g.Methods, ",") != "GET,POST" || g.Paths[0] != "/**" {
		t.Errorf("Normalize = %v %v; want sorted upper-case methods and the every-path default", g.Methods, g.Paths)
	}
	if g := (Grant{Agent: "bot", Backend: "hr"}); true {
		g.Normalize()
		if g.Methods[0] != "*" {
			t.Errorf("no methods should mean every method, got %v", g.Methods)
		}
	}
}

func TestAgentAndIdPValidate(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"agent ok", (&Agent{Name: "bot"}).Validate(), ""},
		{"agent with idp", (&Agent{Name: "bot", IdP: "okta", Subject: "0oa1"}).Validate(), ""},
		{"idp without subject", (&Agent{Name: "bot", IdP: "okta"}).Validate(), "go together"},
		{"negative concurrency", (&Agent{Name: "bot", MaxConcurrent: -1}).Validate(), "max-concurrent"},
		{"idp ok", validIdP(func(p *IdP) {}), ""},
		{"idp http loopback ok", validIdP(func(p *IdP) { p.Issuer = "http://127.0.0.1:9000" }), ""},
		{"idp http remote", validIdP(func(p *IdP) { p.Issuer = "http://login.example.com" }), "loopback"},
		{"idp no audience", validIdP(func(p *IdP) { p.Audience = "" }), "--audience"},
		{"idp bad claim", validIdP(func(p *IdP) { p.Claim = "email" }), "claim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkErr(t, c.err, c.wantErr) })
	}
}

func validIdP(mutate func(p *IdP)) error {
	p := IdP{Name: "okta", Issuer: "https://example.okta.com/oauth2/default", Audience: "api://agw"}
	mutate(&p)
	p.Normalize()
	return p.Validate()
}

func TestTokenActive(t *testing.T) {
	tok := Token{ID: "id", Agent: "bot", Hash: []byte{1}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if !tok.Active(now) {
		t.Error("a token without expiry or revocation is active")
	}
	tok.ExpiresAt = now
	if tok.Active(now) {
		t.Error("a token is not active at its expiry")
	}
	tok.ExpiresAt, tok.RevokedAt = now.Add(time.Hour), now
	if tok.Active(now) {
		t.Error("a revoked token is not active")
	}
}

func TestFieldErrorIsInvalid(t *testing.T) {
	err := ValidateName("name", "Bad Name")
	var fe *FieldError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != "name" {
		t.Errorf("ValidateName error %v: want a FieldError for name matching ErrInvalid", err)
	}
}

// checkErr fails unless err is nil when want is "", or is an ErrInvalid
// whose message contains want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error; want one mentioning %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not mention %q", err, want)
	case want != "" && !errors.Is(err, ErrInvalid):
		t.Errorf("error %v does not match ErrInvalid", err)
	}
}

func TestValidateSecret(t *testing.T) {
	cases := []struct {
		name    string
		secret  string
		noScrub bool
		wantErr string // "" means valid
	}{
		{"a real key", "sk-proj-0123456789abcdef", false, ""},
		{"exactly the minimum", "12345678", false, ""},
		{"empty", "", false, "empty"},
		{"empty with scrubbing off", "", true, "empty"},
		{"spaces", "   ", false, "only whitespace"},
		{"newlines and tabs, scrubbing off", "\n\t \r\n", true, "only whitespace"},
		{"one character", "x", false, "shorter than the minimum of 8"},
		{"seven bytes", "1234567", false, "--no-scrub"},
		{"one character, scrubbing off", "x", true, ""},
		{"too long", strings.Repeat("k", MaxSecretBytes+1), true, "64 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateSecret([]byte(c.secret), c.noScrub)
			checkErr(t, err, c.wantErr)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			if err != nil && len(strings.TrimSpace(c.secret)) > 0 && strings.Contains(err.Error(), c.secret) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}
