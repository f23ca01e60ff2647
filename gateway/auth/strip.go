package auth

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/agw-dev/agw/store"
)

// StripAgentCredential removes every copy of the agent's credential from an
// outgoing request: the credential locations the gateway reads (the
// backend's header, Authorization, the well-known key headers), then any
// other header value or query parameter that contains the credential
// (custom headers, cookies). It runs after hop-by-hop removal and before
// injection.
func StripAgentCredential(h http.Header, u *url.URL, b *store.Backend, cred string) {
	if b.Header != "" {
		delete(h, http.CanonicalHeaderKey(b.Header))
	}
	delete(h, "Authorization")
	for _, k := range KeyHeaders {
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
