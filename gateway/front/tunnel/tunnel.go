// Package tunnel speaks the client side of agw's proxy listener: it reads
// an HTTP CONNECT or SOCKS5 handshake (told apart by its first byte), with
// a bound on its size and its duration, and answers it. What to do with the
// tunnel (intercept, pass through, refuse) is the caller's decision.
package tunnel

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const (
	// MaxHandshake bounds the bytes a client may send before its tunnel
	// is open: an HTTP CONNECT head, or every SOCKS5 message together.
	MaxHandshake = 8 << 10
	// HandshakeTimeout bounds how long a client may take to complete its
	// handshake.
	HandshakeTimeout = 10 * time.Second
)

// Protocols a handshake may use.
const (
	ProtoConnect = "connect" // HTTP CONNECT
	ProtoSOCKS5  = "socks5"
)

// Request is what a client asked for.
type Request struct {
	Proto string // ProtoConnect or ProtoSOCKS5
	// Host is the target as the client named it, lower-cased without a
	// trailing dot: a DNS name or an IP address literal.
	Host string
	Port uint16
	// User and Password are the handshake's credentials (the
	// Proxy-Authorization Basic pair, or the SOCKS5 username/password);
	// empty when the client sent none. The password is a secret: it is
	// never printed by this package.
	User, Password string
}

// Target is host:port.
func (r *Request) Target() string {
	return net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
}

// Credential is the client's proxy credential: the password, or the user
// name when the password is empty (a token given as the user alone).
func (r *Request) Credential() string {
	if r.Password != "" {
		return r.Password
	}
	return r.User
}

// Error is a handshake the client got wrong. Reason says what, in words
// fit for the client and the audit record (it never holds a credential);
// the client has already been answered when Handshake returns one.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return "proxy handshake refused: " + e.Reason }

// Refusal is why a tunnel is not opened, mapped to the protocol's own
// answer by Refuse.
type Refusal int

// Refusals.
const (
	// NotAllowed: the target is neither registered nor listed for
	// pass-through (CONNECT 403, SOCKS5 0x02 "not allowed by ruleset").
	NotAllowed Refusal = iota
	// Unauthorized: the credential in the handshake was refused (CONNECT
	// 407; SOCKS5 answers this in its authentication step, see Handshake).
	Unauthorized
	// Unreachable: a pass-through target could not be dialled (CONNECT
	// 502, SOCKS5 0x04 "host unreachable").
	Unreachable
)

// Conn is a client connection whose handshake has been read. Its Read
// returns what the client sent after the handshake (a TLS ClientHello,
// say) even if it came in the same packet.
type Conn struct {
	net.Conn
	br   *bufio.Reader
	lim  *limitReader
	req  Request
	done bool
}

// Request is the client's request; valid once Handshake returned nil.
func (c *Conn) Request() *Request { return &c.req }

// Read reads the tunnel's payload.
func (c *Conn) Read(b []byte) (int, error) { return c.br.Read(b) }

// limitReader refuses to read more than n bytes until it is lifted.
type limitReader struct {
	r io.Reader
	n int64
}

var errTooLarge = errors.New("handshake too large")

func (l *limitReader) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	return n, err
}

// Options tune Handshake.
type Options struct {
	// Authenticate checks the handshake's credentials as soon as they are
	// read: SOCKS5 answers its authentication step with the result, and a
	// CONNECT is refused with 407. It is called only when the client sent
	// credentials; nil accepts everything. Its error is shown to the
	// client and must not hold the credential.
	Authenticate func(user, password string) error
	// RequestID goes into the JSON error body of a refused CONNECT.
	RequestID string
	// Now is the clock for the handshake deadline; nil is time.Now.
	Now func() time.Time
}

// Handshake reads the client's handshake from c within HandshakeTimeout and
// MaxHandshake bytes. On success the tunnel is not yet open: the caller
// answers with Grant or Refuse. On failure the client has been told why
// (where the protocol allows) and the caller only closes c; the error is an
// *Error unless the connection itself failed.
func Handshake(c net.Conn, opt Options) (*Conn, error) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	_ = c.SetDeadline(now().Add(HandshakeTimeout))
	lim := &limitReader{r: c, n: MaxHandshake}
	tc := &Conn{Conn: c, lim: lim, br: bufio.NewReaderSize(lim, 1024)}
	first, err := tc.br.Peek(1)
	if err != nil {
		return nil, readErr(err)
	}
	switch b := first[0]; {
	case b == 5:
		err = tc.readSOCKS5(opt)
	case b == 4:
		// SOCKS4 reply: version 0, status 0x5b "request rejected".
		_, _ = c.Write([]byte{0, 0x5b, 0, 0, 0, 0, 0, 0})
		err = &Error{Reason: "SOCKS4 is not supported; use SOCKS5 (socks5h://) or HTTP CONNECT"}
	case b == 0x16:
		err = &Error{Reason: "a TLS handshake on the proxy port; set the proxy URL to http://ADDR (CONNECT) or socks5h://ADDR, or use agw's HTTPS port"}
	case b >= 'A' && b <= 'Z':
		err = tc.readConnect(opt)
	default:
		err = &Error{Reason: fmt.Sprintf("unknown protocol (first byte 0x%02x); speak HTTP CONNECT or SOCKS5", b)}
	}
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	tc.lim.n = 1<<62 - 1
	return tc, nil
}

func readErr(err error) error {
	switch {
	case errors.Is(err, errTooLarge):
		return &Error{Reason: fmt.Sprintf("handshake larger than %d bytes", MaxHandshake)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Reason: "the client closed the connection during the handshake"}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Reason: fmt.Sprintf("handshake not completed within %s", HandshakeTimeout)}
	}
	return err
}

// Grant tells the client its tunnel is open.
func (c *Conn) Grant() error {
	if c.done {
		return nil
	}
	c.done = true
	var err error
	if c.req.Proto == ProtoConnect {
		_, err = io.WriteString(c.Conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	} else {
		_, err = c.Conn.Write(socksReply(socksSucceeded))
	}
	return err
}

// Refuse tells the client its tunnel will not open. body is the JSON error
// document a CONNECT refusal carries (SOCKS5 has no room for one).
func (c *Conn) Refuse(why Refusal, body []byte) error {
	if c.done {
		return nil
	}
	c.done = true
	if c.req.Proto == ProtoSOCKS5 {
		code := byte(socksNotAllowed)
		if why == Unreachable {
			code = socksHostUnreachable
		}
		_, err := c.Conn.Write(socksReply(code))
		return err
	}
	status := http.StatusForbidden
	switch why {
	case Unauthorized:
		status = http.StatusProxyAuthRequired
	case Unreachable:
		status = http.StatusBadGateway
	}
	return writeHTTP(c.Conn, status, body)
}

func writeHTTP(w io.Writer, status int, body []byte) error {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	b.WriteString("Content-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n")
	if status == http.StatusProxyAuthRequired {
		b.WriteString("Proxy-Authenticate: Basic realm=\"agw\"\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	_, err := io.WriteString(w, b.String())
	return err
}

// normalizeHost lower-cases a target host and removes one trailing dot
// and IPv6 brackets; it returns "" for a name that is not a plausible DNS
// name or IP literal.
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	if h == "" || len(h) > 253 {
		return ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return ""
		}
	}
	return h
}

// basicAuth decodes a Proxy-Authorization value of the Basic scheme.
func basicAuth(v string) (user, pass string, ok bool) {
	scheme, param, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(param))
	if err != nil {
		return "", "", false
	}
	user, pass, _ = strings.Cut(string(dec), ":")
	return user, pass, true
}
