package gateway

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/agw-dev/agw/store"
)

// scrubbed replaces a response header value that echoes the injected
// credential.
const scrubbed = "[redacted by agw]"

// injection is a backend credential prepared for the request path: the
// header or query parameter to set and the values to look for in responses.
// It is built once per published route (so once per rotation), not per
// request.
type injection struct {
	mode   store.InjectMode
	header string // canonical header name (header, bearer, basic modes)
	value  string // the header value, or the query value
	param  string // query mode: parameter name
	// echoes are the strings whose presence in a response header means the
	// backend reflected the credential: the secret itself and the encoded
	// forms that went on the wire.
	echoes []string
}

func newInjection(b *store.Backend, secret []byte) *injection {
	s := string(secret)
	inj := &injection{mode: b.Inject}
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
		inj.echoes = append(inj.echoes, enc)
	case store.InjectQuery:
		inj.param = b.QueryParam
		inj.value = s
		if q := url.QueryEscape(s); q != s {
			inj.echoes = append(inj.echoes, q)
		}
	}
	if s != "" {
		inj.echoes = append(inj.echoes, s)
	}
	return inj
}

// stripAgentCredential removes every copy of the agent's credential from an
// outgoing request: the credential locations the gateway reads (the
// backend's header, Authorization, the well-known key headers), then any
// other header value or query parameter that contains the credential
// (custom headers, cookies). It runs after hop-by-hop removal and before
// injection.
func stripAgentCredential(h http.Header, u *url.URL, b *store.Backend, cred string) {
	if b.Header != "" {
		delete(h, http.CanonicalHeaderKey(b.Header))
	}
	delete(h, "Authorization")
	for _, k := range keyHeaders {
		delete(h, k)
	}
	if cred != "" {
		for k, vv := range h {
			for _, v := range vv {
				if strings.Contains(v, cred) {
					delete(h, k)
					break
				}
			}
		}
	}
	if b.Inject == store.InjectQuery || (cred != "" && strings.Contains(u.RawQuery, cred)) {
		u.RawQuery = dropQueryParams(u.RawQuery, b.QueryParam, cred)
	}
}

// dropQueryParams removes from a raw query every parameter named name
// (when name is not empty) and every one whose key or value contains cred,
// keeping the others in order and byte for byte.
func dropQueryParams(raw, name, cred string) string {
	if raw == "" {
		return raw
	}
	var b strings.Builder
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue // unparsable pairs are dropped, as ReverseProxy does
		}
		if name != "" && dk == name {
			continue
		}
		if cred != "" && (strings.Contains(dk, cred) || strings.Contains(dv, cred) || strings.Contains(pair, cred)) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}

// inject puts the backend credential on an outgoing request, replacing
// whatever is there (never appending).
func (inj *injection) inject(h http.Header, u *url.URL) {
	switch inj.mode {
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

// scrubHeaders replaces every header value that contains the injected
// credential with "[redacted by agw]", so a backend that reflects request
// headers (debug and echo endpoints) cannot hand the secret to the agent.
// It returns how many values it replaced.
func (inj *injection) scrubHeaders(h http.Header) int {
	n := 0
	for _, vv := range h {
		for i, v := range vv {
			for _, e := range inj.echoes {
				if strings.Contains(v, e) {
					vv[i] = scrubbed
					n++
					break
				}
			}
		}
	}
	return n
}
