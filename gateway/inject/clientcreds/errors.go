package clientcreds

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/oauth2"
)

// tokenError is ErrTokenUnavailable with what went wrong, in words that
// hold no secret: x/oauth2's own errors quote the whole response body,
// which may echo the request.
type tokenError struct {
	host   string
	reason string
}

func (e *tokenError) Error() string {
	return "could not obtain an OAuth2 token from " + e.host + ": " + e.reason
}

func (e *tokenError) Unwrap() error { return ErrTokenUnavailable }

// reason describes err for a log line or an agent: the status and the
// standard error and error_description fields of an error response, or the
// network failure; never the body, and never the client secret even if the
// endpoint echoed it.
func (s *Source) reason(err error) string {
	var r string
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			r = "HTTP " + strconv.Itoa(re.Response.StatusCode)
			if loc := re.Response.Header.Get("Location"); loc != "" {
				r += " (redirects are not followed)"
			}
		} else {
			r = "error response"
		}
		if re.ErrorCode != "" {
			r += ": " + s.clean(re.ErrorCode, 64)
		}
		if re.ErrorDescription != "" {
			r += ": " + s.clean(re.ErrorDescription, 200)
		}
	case errors.Is(err, context.DeadlineExceeded):
		r = "timed out"
	case errors.As(err, &ue):
		// ue.Error() would repeat the token URL; the host is already said.
		if ue.Timeout() {
			r = "timed out"
		} else {
			r = s.clean(ue.Err.Error(), 200)
		}
	default:
		r = s.clean(err.Error(), 200)
	}
	return r
}

// clean removes the client secret, in every form the request carried it
// (raw, form-encoded, inside the Basic credential), from text a remote
// party wrote, before sanitize truncates it, so not even a prefix survives.
func (s *Source) clean(text string, max int) string {
	if s.scrub != nil {
		text, _ = s.scrub.String(text)
	}
	return sanitize(text, max)
}

// sanitize keeps text from a remote party to one printable line of at most
// max bytes.
func sanitize(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
