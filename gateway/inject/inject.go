// Package inject puts a backend's credential on the upstream request, in
// the way the backend takes it (a header, bearer, Basic auth or a query
// parameter), replacing whatever the agent sent there.
package inject

import (
	"encoding/base64"
	"net/http"
	"net/url"

	"github.com/agw-dev/agw/store"
)

// Injection is a backend credential prepared for the request path: the
// header or query parameter to set (what to redact from responses is
// gateway/scrub's, compiled from the same secret). It is built once per published route (so once per rotation), not per
// request.
type Injection struct {
	Mode   store.InjectMode
	header string // canonical header name (header, bearer, basic modes)
	value  string // the header value, or the query value
	param  string // query mode: parameter name
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
		inj.value = "Basic " + base64.StdEncoding.EncodeToString([]byte(b.BasicUser+":"+s))
	case store.InjectQuery:
		inj.param = b.QueryParam
		inj.value = s
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
