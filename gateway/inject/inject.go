// Package inject puts a backend's credential on the upstream request, in
// the way the backend takes it (a header, bearer, Basic auth or a query
// parameter), replacing whatever the agent sent there.
package inject

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/agw-dev/agw/store"
)

// Scrubbed replaces a response header value that echoes the injected
// credential.
const Scrubbed = "[redacted by agw]"

// Injection is a backend credential prepared for the request path: the
// header or query parameter to set and the values to look for in responses.
// It is built once per published route (so once per rotation), not per
// request.
type Injection struct {
	Mode   store.InjectMode
	header string // canonical header name (header, bearer, basic modes)
	value  string // the header value, or the query value
	param  string // query mode: parameter name
	// Echoes are the strings whose presence in a response header means the
	// backend reflected the credential: the secret itself and the encoded
	// forms that went on the wire.
	Echoes []string
}

// New prepares b's credential secret for injection.
func New(b *store.Backend, secret []byte) *Injection {
	s := string(secret)
	inj := &Injection{Mode: b.Inject}
	switch b.Inject {
	case store.InjectHeader:
		inj.header = http.CanonicalHeaderKey(b.Header)
		inj.value = b.Prefix + s
	case store.InjectBearer:
		inj.header = "Authorization"
		inj.value = "Bearer " + s
	case store.InjectBasic:
		inj.header = "Authorization"
		enc := base64.StdEncoding.EncodeToString([]byte(b.BasicUser + ":" + s))
		inj.value = "Basic " + enc
		inj.Echoes = append(inj.Echoes, enc)
	case store.InjectQuery:
		inj.param = b.QueryParam
		inj.value = s
		if q := url.QueryEscape(s); q != s {
			inj.Echoes = append(inj.Echoes, q)
		}
	}
	if s != "" {
		inj.Echoes = append(inj.Echoes, s)
	}
	return inj
}

// Apply puts the backend credential on an outgoing request, replacing
// whatever is there (never appending).
func (inj *Injection) Apply(h http.Header, u *url.URL) {
	switch inj.Mode {
	case store.InjectQuery:
		kv := url.QueryEscape(inj.param) + "=" + url.QueryEscape(inj.value)
		if u.RawQuery == "" {
			u.RawQuery = kv
		} else {
			u.RawQuery += "&" + kv
		}
	case store.InjectHeader, store.InjectBearer, store.InjectBasic:
		h[inj.header] = []string{inj.value}
	}
}

// ScrubHeaders replaces every header value that contains the injected
// credential with "[redacted by agw]", so a backend that reflects request
// headers (debug and echo endpoints) cannot hand the secret to the agent.
// It returns how many values it replaced.
func (inj *Injection) ScrubHeaders(h http.Header) int {
	n := 0
	for _, vv := range h {
		for i, v := range vv {
			for _, e := range inj.Echoes {
				if strings.Contains(v, e) {
					vv[i] = Scrubbed
					n++
					break
				}
			}
		}
	}
	return n
}
