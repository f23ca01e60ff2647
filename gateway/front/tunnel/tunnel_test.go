package tunnel

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// countingConn counts the bytes the server side read.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

type result struct {
	req     Request
	err     error
	reply   []byte
	read    int64
	elapsed time.Duration
}

// run plays input (then, unless hold, nothing more) against Handshake on
// one end of a pipe, grants a tunnel that opened, and returns what the
// server decided and what the client received.
func run(t *testing.T, input []byte, hold bool, opt Options) result {
	t.Helper()
	var res result
	synctest.Test(t, func(t *testing.T) {
		cli, srv := net.Pipe()
		cc := &countingConn{Conn: srv}
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			tc, err := Handshake(cc, opt)
			res.err = err
			res.elapsed = time.Since(start)
			if err == nil {
				res.req = *tc.Request()
				_ = tc.Grant()
			}
			srv.Close()
		}()
		go func() {
			_, _ = cli.Write(input)
			if !hold {
				// A client that sent everything waits for the answer.
				return
			}
		}()
		res.reply, _ = io.ReadAll(cli)
		<-done
		cli.Close()
		res.read = cc.read.Load()
	})
	return res
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func socksGreeting(methods ...byte) []byte { return append([]byte{5, byte(len(methods))}, methods...) }

func socksConnectDomain(host string, port uint16) []byte {
	b := []byte{5, 1, 0, 3, byte(len(host))}
	b = append(b, host...)
	return append(b, byte(port>>8), byte(port))
}

func socksUserPass(user, pass string) []byte {
	b := []byte{1, byte(len(user))}
	b = append(b, user...)
	b = append(b, byte(len(pass)))
	return append(b, pass...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestHandshake(t *testing.T) {
	const tok = "agw_secret-token-value"
	accept := func(user, pass string) error {
		if pass != tok {
			return errors.New("unknown gateway token")
		}
		return nil
	}
	cases := []struct {
		name      string
		input     []byte
		opt       Options
		wantReq   Request
		wantErr   string // substring of the refusal reason; "" means accepted
		wantReply string // prefix of what the client reads
	}{
		{
			name:      "connect",
			input:     []byte("CONNECT API.Example.COM.:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"),
			wantReq:   Request{Proto: ProtoConnect, Host: "api.example.com", Port: 443},
			wantReply: "HTTP/1.1 200 Connection established\r\n\r\n",
		},
		{
			name:      "connect with token",
			input:     []byte("CONNECT api.example.com:443 HTTP/1.1\r\nProxy-Authorization: " + basic("coder", tok) + "\r\n\r\n"),
			opt:       Options{Authenticate: accept},
			wantReq:   Request{Proto: ProtoConnect, Host: "api.example.com", Port: 443, User: "coder", Password: tok},
			wantReply: "HTTP/1.1 200",
		},
		{
			name:      "connect ipv6",
			input:     []byte("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n"),
			wantReq:   Request{Proto: ProtoConnect, Host: "::1", Port: 8443},
			wantReply: "HTTP/1.1 200",
		},
		{
			name:      "connect with wrong token",
			input:     []byte("CONNECT api.example.com:443 HTTP/1.1\r\nProxy-Authorization: " + basic("coder", "agw_nope") + "\r\n\r\n"),
			opt:       Options{Authenticate: accept},
			wantErr:   "unknown gateway token",
			wantReply: "HTTP/1.1 407 Proxy Authentication Required\r\n",
		},
		{
			name:      "connect with bearer proxy auth",
			input:     []byte("CONNECT api.example.com:443 HTTP/1.1\r\nProxy-Authorization: Bearer " + tok + "\r\n\r\n"),
			opt:       Options{Authenticate: accept},
			wantErr:   "one Basic credential",
			wantReply: "HTTP/1.1 407",
		},
		{
			name:      "malformed request line",
			input:     []byte("CONNECT\r\n\r\n"),
			wantErr:   "malformed proxy request",
			wantReply: "HTTP/1.1 400 Bad Request\r\n",
		},
		{
			name:      "connect without port",
			input:     []byte("CONNECT api.example.com HTTP/1.1\r\n\r\n"),
			wantErr:   "malformed CONNECT target",
			wantReply: "HTTP/1.1 400",
		},
		{
			name:      "connect port out of range",
			input:     []byte("CONNECT api.example.com:70000 HTTP/1.1\r\n\r\n"),
			wantErr:   "malformed CONNECT target",
			wantReply: "HTTP/1.1 400",
		},
		{
			name:      "connect to a strange name",
			input:     []byte("CONNECT a%20b:443 HTTP/1.1\r\n\r\n"),
			wantErr:   "malformed proxy request",
			wantReply: "HTTP/1.1 400",
		},
		{
			name:      "connect to a name with punctuation",
			input:     []byte("CONNECT a!b:443 HTTP/1.1\r\n\r\n"),
			wantErr:   "malformed CONNECT target",
			wantReply: "HTTP/1.1 400",
		},
		{
			name:      "absolute form",
			input:     []byte("GET https://api.example.com/v1/models HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
			wantErr:   "absolute-form request (GET https://...) refused",
			wantReply: "HTTP/1.1 400",
		},
		{
			name:      "plain http",
			input:     []byte("GET /v1/models HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
			wantErr:   "plain HTTP request on the proxy port refused",
			wantReply: "HTTP/1.1 400",
		},
		{
			name:      "tls to the proxy port",
			input:     []byte{0x16, 3, 1, 0, 10},
			wantErr:   "a TLS handshake on the proxy port",
			wantReply: "",
		},
		{
			name:      "socks4",
			input:     []byte{4, 1, 1, 187, 127, 0, 0, 1, 0},
			wantErr:   "SOCKS4 is not supported",
			wantReply: "\x00\x5b",
		},
		{
			name:      "binary junk",
			input:     []byte{0xff, 0, 0},
			wantErr:   "unknown protocol (first byte 0xff)",
			wantReply: "",
		},
		{
			name:      "socks5 no auth domain",
			input:     cat(socksGreeting(0), socksConnectDomain("API.example.com", 443)),
			wantReq:   Request{Proto: ProtoSOCKS5, Host: "api.example.com", Port: 443},
			wantReply: "\x05\x00" + "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00",
		},
		{
			name:      "socks5 ipv4",
			input:     cat(socksGreeting(0), []byte{5, 1, 0, 1, 10, 0, 0, 7, 0x01, 0xbb}),
			wantReq:   Request{Proto: ProtoSOCKS5, Host: "10.0.0.7", Port: 443},
			wantReply: "\x05\x00\x05\x00",
		},
		{
			name:      "socks5 ipv6",
			input:     cat(socksGreeting(0), []byte{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb}),
			wantReq:   Request{Proto: ProtoSOCKS5, Host: "::1", Port: 443},
			wantReply: "\x05\x00\x05\x00",
		},
		{
			name:      "socks5 user pass",
			input:     cat(socksGreeting(0, 2), socksUserPass("coder", tok), socksConnectDomain("api.example.com", 443)),
			opt:       Options{Authenticate: accept},
			wantReq:   Request{Proto: ProtoSOCKS5, Host: "api.example.com", Port: 443, User: "coder", Password: tok},
			wantReply: "\x05\x02" + "\x01\x00" + "\x05\x00",
		},
		{
			name:      "socks5 wrong password",
			input:     cat(socksGreeting(2), socksUserPass("coder", "agw_nope"), socksConnectDomain("api.example.com", 443)),
			opt:       Options{Authenticate: accept},
			wantErr:   "unknown gateway token",
			wantReply: "\x05\x02\x01\x01",
		},
		{
			name:      "socks5 only gssapi",
			input:     socksGreeting(1),
			wantErr:   "neither no-authentication nor username/password",
			wantReply: "\x05\xff",
		},
		{
			name:      "socks5 bind",
			input:     cat(socksGreeting(0), []byte{5, 2, 0, 1, 127, 0, 0, 1, 0, 80}),
			wantErr:   "SOCKS5 BIND is not supported",
			wantReply: "\x05\x00" + "\x05\x07",
		},
		{
			name:      "socks5 udp associate",
			input:     cat(socksGreeting(0), []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}),
			wantErr:   "SOCKS5 UDP ASSOCIATE is not supported",
			wantReply: "\x05\x00" + "\x05\x07",
		},
		{
			name:      "socks5 unknown address type",
			input:     cat(socksGreeting(0), []byte{5, 1, 0, 9, 0, 0}),
			wantErr:   "address type 9",
			wantReply: "\x05\x00" + "\x05\x08",
		},
		{
			name:      "socks5 bad domain",
			input:     cat(socksGreeting(0), socksConnectDomain("a b", 443)),
			wantErr:   "is not a host name",
			wantReply: "\x05\x00" + "\x05\x04",
		},
		{
			name:      "socks5 cut short",
			input:     cat(socksGreeting(0), []byte{5, 1}),
			wantErr:   "closed the connection during the handshake",
			wantReply: "\x05\x00",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The client closes after sending: a cut-short handshake
			// ends at EOF rather than at the deadline.
			res := runClosing(t, tc.input, tc.opt)
			if !strings.HasPrefix(string(res.reply), tc.wantReply) {
				t.Errorf("client read %q; want prefix %q", res.reply, tc.wantReply)
			}
			if tc.wantErr == "" {
				if res.err != nil {
					t.Fatalf("handshake refused: %v", res.err)
				}
				if res.req != tc.wantReq {
					t.Errorf("request %+v; want %+v", res.req, tc.wantReq)
				}
				return
			}
			var e *Error
			if !errors.As(res.err, &e) || !strings.Contains(e.Reason, tc.wantErr) {
				t.Fatalf("error %v; want a refusal saying %q", res.err, tc.wantErr)
			}
			if strings.Contains(e.Reason, tok) || bytes.Contains(res.reply, []byte(tok)) {
				t.Error("the refusal repeats the token")
			}
			if strings.HasPrefix(tc.wantReply, "HTTP/1.1 4") {
				assertJSONError(t, res.reply)
			}
		})
	}
}

// runClosing is run for a client that closes its sending side after its
// input (a pipe closes both ways, so the reply is read first).
func runClosing(t *testing.T, input []byte, opt Options) result {
	t.Helper()
	var res result
	synctest.Test(t, func(t *testing.T) {
		cli, srv := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			tc, err := Handshake(srv, opt)
			res.err = err
			if err == nil {
				res.req = *tc.Request()
				_ = tc.Grant()
			}
			srv.Close()
		}()
		replies := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(cli)
			replies <- b
		}()
		_, _ = cli.Write(input)
		// Let the server act on everything sent, then hang up.
		synctest.Wait()
		cli.Close()
		<-done
		res.reply = <-replies
	})
	return res
}

func assertJSONError(t *testing.T, reply []byte) {
	t.Helper()
	_, body, ok := bytes.Cut(reply, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no body in %q", reply)
	}
	var doc struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Error.Type == "" || doc.Error.Message == "" {
		t.Errorf("body %q is not agw's JSON error (%v)", body, err)
	}
}

func TestHandshakeOversized(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		reply string
	}{
		{"connect header block", []byte("CONNECT api.example.com:443 HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"), "HTTP/1.1 431"},
		{"connect request line", []byte("CONNECT " + strings.Repeat("a", 1<<20) + ":443 HTTP/1.1\r\n\r\n"), "HTTP/1.1 431"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.input, false, Options{})
			var e *Error
			if !errors.As(res.err, &e) || !strings.Contains(e.Reason, "larger than") {
				t.Fatalf("error %v; want a refusal for size", res.err)
			}
			if !strings.HasPrefix(string(res.reply), tc.reply) {
				t.Errorf("client read %.80q; want %q", res.reply, tc.reply)
			}
			if res.read > MaxHandshake {
				t.Errorf("server read %d bytes; the bound is %d", res.read, MaxHandshake)
			}
		})
	}
}

func TestHandshakeSlow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		reply string
	}{
		{"connect head never ends", []byte("CONNECT api.example.com:443 HTTP/1.1\r\nHost: a"), "HTTP/1.1 408"},
		{"socks5 request never comes", socksGreeting(0), "\x05\x00"},
		{"nothing sent", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.input, true, Options{})
			var e *Error
			if !errors.As(res.err, &e) || !strings.Contains(e.Reason, "not completed within") {
				t.Fatalf("error %v; want a refusal for time", res.err)
			}
			if res.elapsed != HandshakeTimeout {
				t.Errorf("refused after %s; want %s", res.elapsed, HandshakeTimeout)
			}
			if !strings.HasPrefix(string(res.reply), tc.reply) {
				t.Errorf("client read %q; want prefix %q", res.reply, tc.reply)
			}
		})
	}
}

func TestRefuse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		why   Refusal
		reply string
	}{
		{"connect not allowed", []byte("CONNECT other.example.org:443 HTTP/1.1\r\n\r\n"), NotAllowed, "HTTP/1.1 403 Forbidden\r\n"},
		{"connect unreachable", []byte("CONNECT other.example.org:443 HTTP/1.1\r\n\r\n"), Unreachable, "HTTP/1.1 502 Bad Gateway\r\n"},
		{"socks5 not allowed", cat(socksGreeting(0), socksConnectDomain("other.example.org", 443)), NotAllowed, "\x05\x00\x05\x02"},
		{"socks5 unreachable", cat(socksGreeting(0), socksConnectDomain("other.example.org", 443)), Unreachable, "\x05\x00\x05\x04"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cli, srv := net.Pipe()
				go func() {
					tc2, err := Handshake(srv, Options{})
					if err == nil {
						_ = tc2.Refuse(tc.why, ErrorBody("agw_forbidden", "not registered", "r1"))
					} else {
						t.Errorf("handshake: %v", err)
					}
					srv.Close()
				}()
				go func() { _, _ = cli.Write(tc.input) }()
				reply, _ := io.ReadAll(cli)
				if !strings.HasPrefix(string(reply), tc.reply) {
					t.Errorf("client read %q; want prefix %q", reply, tc.reply)
				}
				if strings.HasPrefix(tc.reply, "HTTP") {
					assertJSONError(t, reply)
				}
			})
		})
	}
}

// TestPayloadAfterHandshake: bytes a client sends right behind its CONNECT
// (a ClientHello in the same packet) belong to the tunnel.
func TestPayloadAfterHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cli, srv := net.Pipe()
		got := make(chan string, 1)
		go func() {
			tc, err := Handshake(srv, Options{})
			if err != nil {
				t.Errorf("handshake: %v", err)
				got <- ""
				return
			}
			_ = tc.Grant()
			b := make([]byte, 5)
			_, _ = io.ReadFull(tc, b)
			got <- string(b)
			srv.Close()
		}()
		go func() {
			_, _ = cli.Write([]byte("CONNECT a.example.com:443 HTTP/1.1\r\n\r\nhello"))
		}()
		_, _ = io.ReadAll(cli)
		if g := <-got; g != "hello" {
			t.Errorf("tunnel read %q; want %q", g, "hello")
		}
	})
}

func TestAllow(t *testing.T) {
	a := Allow{mustPrefix("127.0.0.0/8"), mustPrefix("10.1.0.0/16"), mustPrefix("::1/128")}
	for addr, want := range map[string]bool{
		"127.0.0.1:5000": true, "10.1.2.3:1": true, "[::1]:9": true, "[::ffff:10.1.0.9]:9": true,
		"10.2.0.1:5": false, "192.168.1.1:80": false, "[fe80::1%eth0]:5": false, "garbage": false,
	} {
		if got := a.Permits(fakeAddr(addr)); got != want {
			t.Errorf("Permits(%s) = %v; want %v", addr, got, want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
