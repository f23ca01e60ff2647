package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Policy decides one method and one path, so the backend must see exactly
// those: a header or parameter that asks a framework to treat the request
// as another method or another path would turn an allowed POST into a
// DELETE, or a granted path into any path.

// overrideHeaders are the request headers that frameworks and proxies honour
// as a method or path override (compared in lower case with '_' read as
// '-', since CGI-style servers fold both to the same variable):
//
//	x-http-method-override, x-http-method, x-method-override,
//	x-original-method           method overrides (Rails, Express, ASP.NET,
//	                            Google APIs, Symfony, PHP frameworks)
//	x-original-url, x-rewrite-url, x-original-uri, x-override-url,
//	x-envoy-original-path, x-forwarded-uri, x-forwarded-path,
//	x-forwarded-prefix, x-request-uri
//	                            path overrides (IIS, Symfony, nginx setups,
//	                            Envoy, Spring)
//	x-host, x-forwarded-server, x-original-host
//	                            host overrides
var overrideHeaders = map[string]bool{
	"x-http-method-override": true,
	"x-http-method":          true,
	"x-method-override":      true,
	"x-original-method":      true,
	"x-original-url":         true,
	"x-rewrite-url":          true,
	"x-original-uri":         true,
	"x-override-url":         true,
	"x-envoy-original-path":  true,
	"x-forwarded-uri":        true,
	"x-forwarded-path":       true,
	"x-forwarded-prefix":     true,
	"x-request-uri":          true,
	"x-host":                 true,
	"x-forwarded-server":     true,
	"x-original-host":        true,
}

// overrideParams are query and form parameters frameworks read as the
// method (Rails, Laravel, Symfony, Express method-override), compared in
// lower case.
var overrideParams = map[string]bool{
	"_method":                true,
	"x-http-method-override": true,
	"x-method-override":      true,
	"x-http-method":          true,
}

// IsOverrideHeader reports whether name is a method, path or host override
// header.
func IsOverrideHeader(name string) bool {
	n := strings.ToLower(name)
	if strings.IndexByte(n, '_') >= 0 {
		n = strings.ReplaceAll(n, "_", "-")
	}
	return overrideHeaders[n]
}

// StripOverrideHeaders removes every override header from h and returns
// how many it removed.
func StripOverrideHeaders(h http.Header) int {
	n := 0
	for k := range h {
		if IsOverrideHeader(k) {
			delete(h, k)
			n++
		}
	}
	return n
}

// maxInspectedForm bounds the form bodies read in full to look for a
// method override; a larger urlencoded body is refused rather than passed
// uninspected.
const maxInspectedForm = 1 << 20

// ErrOverrideInBody is returned by the body of a multipart request when a
// part is named like a method override; the upstream request is then
// abandoned.
var ErrOverrideInBody = errors.New("the request body has a method override field")

// CheckOverrideParams refuses a request that asks for another method
// through its query or its form body (why is "" when there is none). A
// urlencoded body is read in full (up to 1 MiB, else refused) and put back;
// a multipart body is checked as it streams: a part named like an override
// makes its reader fail with ErrOverrideInBody, so the backend never
// receives a complete request.
func CheckOverrideParams(r *http.Request) (why string) {
	if k := overrideParam(r.URL.RawQuery); k != "" {
		return fmt.Sprintf("the query carries %q, a method override; the gateway decides one method and forwards exactly that one", k)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	ct := r.Header.Get("Content-Type")
	if !hasPrefixFold(ct, "application/x-www-form-urlencoded") && !hasPrefixFold(ct, "multipart/form-data") {
		return "" // the common case, without parsing the media type
	}
	mt, params, _ := mime.ParseMediaType(ct)
	switch mt {
	case "application/x-www-form-urlencoded":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxInspectedForm+1))
		if err != nil {
			return "the request body could not be read: " + err.Error()
		}
		if len(body) > maxInspectedForm {
			return "a form body over 1 MiB cannot be inspected for method overrides; send it as another content type or in smaller parts"
		}
		if k := overrideParam(string(body)); k != "" {
			return fmt.Sprintf("the form body carries %q, a method override; the gateway decides one method and forwards exactly that one", k)
		}
		rest := r.Body
		r.Body = readCloser{bytes.NewReader(body), rest}
	case "multipart/form-data":
		if params["boundary"] == "" {
			return "a multipart body without a boundary"
		}
		r.Body = &multipartGuard{rc: r.Body}
	}
	return ""
}

// overrideParam returns the first override parameter name in a raw query
// or urlencoded form, or "".
func overrideParam(raw string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(pair, "=")
		if k == "" {
			continue
		}
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if overrideParams[strings.ToLower(strings.TrimSpace(k))] {
			return k
		}
	}
	return ""
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// multipartGuard fails a multipart body that has a part named like a method
// override. It looks for `name="_method"` (any case, quoted or not) across
// read boundaries, holding back no bytes: the match is caught before the
// read that completes it returns.
type multipartGuard struct {
	rc   io.ReadCloser
	tail []byte // the last bytes read, to match across reads
	err  error
}

const guardKeep = 64

func (g *multipartGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.rc.Read(p)
	if n > 0 {
		window := append(g.tail, p[:n]...)
		if hasOverridePart(window) {
			g.err = ErrOverrideInBody
			return 0, g.err
		}
		if len(window) > guardKeep {
			window = window[len(window)-guardKeep:]
		}
		g.tail = append(g.tail[:0], window...)
	}
	return n, err
}

func (g *multipartGuard) Close() error { return g.rc.Close() }

func hasOverridePart(b []byte) bool {
	lower := bytes.ToLower(b)
	for p := range overrideParams {
		for _, form := range [...]string{`name="` + p + `"`, `name=` + p + `;`, `name=` + p + "\r"} {
			if bytes.Contains(lower, []byte(form)) {
				return true
			}
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
