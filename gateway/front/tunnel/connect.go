package tunnel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
)

// readConnect reads an HTTP CONNECT head. Anything else an HTTP client may
// send a proxy (an absolute-form GET, a plain request) is refused: agw
// injects credentials only inside TLS it terminates itself.
func (c *Conn) readConnect(opt Options) error {
	r, err := http.ReadRequest(c.br)
	if err != nil {
		var e *Error
		if !errors.As(readErr(err), &e) {
			// Not a connection failure: the head did not parse.
			e = &Error{}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return e
		}
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, errTooLarge):
			status = http.StatusRequestHeaderFieldsTooLarge
		case isTimeout(err):
			status = http.StatusRequestTimeout
		default:
			e.Reason = "malformed proxy request: " + printable(err.Error()) + "; send CONNECT host:443 HTTP/1.1"
		}
		c.refuseHTTP(status, deny.BadRequest, e.Reason, opt.RequestID)
		return e
	}
	if r.Method != http.MethodConnect {
		reason := "plain HTTP request on the proxy port refused: agw injects credentials only over TLS; call https:// URLs through HTTPS_PROXY (CONNECT)"
		if r.URL.IsAbs() {
			reason = fmt.Sprintf("absolute-form request (%s %s://...) refused: agw injects credentials only over TLS; call https:// URLs and set HTTPS_PROXY, so the client sends CONNECT",
				printable(r.Method), printable(r.URL.Scheme))
		}
		c.refuseHTTP(http.StatusBadRequest, deny.BadRequest, reason, opt.RequestID)
		return &Error{Reason: reason}
	}
	host, port, ok := splitTarget(r.RequestURI)
	if !ok {
		reason := "malformed CONNECT target " + strconv.Quote(printable(r.RequestURI)) + ": send CONNECT host:port"
		c.refuseHTTP(http.StatusBadRequest, deny.BadRequest, reason, opt.RequestID)
		return &Error{Reason: reason}
	}
	c.req = Request{Proto: ProtoConnect, Host: host, Port: port}
	if vs := r.Header.Values("Proxy-Authorization"); len(vs) > 0 {
		user, pass, ok := basicAuth(vs[0])
		if len(vs) > 1 || !ok {
			reason := "Proxy-Authorization must be one Basic credential: the agw gateway token as the password"
			c.refuseHTTP(http.StatusProxyAuthRequired, deny.Unauthenticated, reason, opt.RequestID)
			return &Error{Reason: reason}
		}
		c.req.User, c.req.Password = user, pass
		if opt.Authenticate != nil {
			if err := opt.Authenticate(user, pass); err != nil {
				c.refuseHTTP(http.StatusProxyAuthRequired, deny.Unauthenticated, err.Error(), opt.RequestID)
				return &Error{Reason: err.Error()}
			}
		}
	}
	if r.ContentLength != 0 {
		reason := "a CONNECT request carries no body"
		c.refuseHTTP(http.StatusBadRequest, deny.BadRequest, reason, opt.RequestID)
		return &Error{Reason: reason}
	}
	return nil
}

// refusalWriteTimeout bounds writing a refusal to a client that does not read.
const refusalWriteTimeout = 5 * time.Second

// refuseHTTP answers a refused CONNECT with agw's JSON error body.
func (c *Conn) refuseHTTP(status int, typ, msg, requestID string) {
	c.done = true
	// The handshake deadline may have passed (a slow client is told so).
	_ = c.Conn.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
	_ = writeHTTP(c.Conn, status, ErrorBody(typ, msg, requestID))
}

// ErrorBody is agw's JSON error document, for a refused CONNECT.
func ErrorBody(typ, msg, requestID string) []byte {
	b, _ := json.Marshal(deny.Body{Error: deny.Detail{Type: typ, Message: msg, RequestID: requestID}})
	return append(b, '\n')
}

// splitTarget parses an authority-form target, host:port.
func splitTarget(s string) (string, uint16, bool) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, false
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return "", 0, false
	}
	host := normalizeHost(h)
	return host, uint16(port), host != ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// printable bounds and quotes attacker-supplied text.
func printable(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}
