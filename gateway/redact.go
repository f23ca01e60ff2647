package gateway

import (
	"errors"
	"net/url"
	"strings"

	"github.com/agw-dev/agw/gateway/inject"
)

// redactError renders an upstream error for the agent, the log and the
// audit trail without any credential in it. Go's *url.Error prints the
// whole request URL, query included, and in query mode the query holds the
// backend secret: the URL is reduced to scheme, host and path, any other URL
// in the text loses its query, and every encoded form of the injected
// secret is cut out as a last resort.
func redactError(err error, inj *inject.Injection) string {
	var msg string
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Op + " " + redactURL(ue.URL) + ": " + redactURLs(ue.Err.Error())
	} else {
		msg = redactURLs(err.Error())
	}
	return redactSecret(msg, inj)
}

// redactSecret replaces every echo of the injected credential in s.
func redactSecret(s string, inj *inject.Injection) string {
	if inj == nil {
		return s
	}
	for _, e := range inj.Echoes {
		if e != "" && strings.Contains(s, e) {
			s = strings.ReplaceAll(s, e, "[redacted]")
		}
	}
	return s
}

// redactURL keeps scheme, host and path of a URL and drops its user info,
// query and fragment.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactURLs(raw)
	}
	out := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		out += "?[query redacted]"
	}
	return out
}

// redactURLs cuts the query (and user info) out of every URL-looking run in
// free text: from "?" to the next space or quote after a "://".
func redactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, " \t\n\"'<>")
		if end < 0 {
			end = len(s)
		}
		tok := s[:end]
		if at := strings.LastIndexByte(tok, '@'); at >= 0 && !strings.ContainsAny(tok[:at], "/?") {
			tok = tok[at+1:] // user info
		}
		if q := strings.IndexAny(tok, "?#"); q >= 0 {
			tok = tok[:q] + "?[query redacted]"
		}
		b.WriteString(tok)
		s = s[end:]
	}
}
