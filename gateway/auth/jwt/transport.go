package jwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/agw-dev/agw/gateway/scrub"
)

// maxDocBytes bounds a discovery document or JWKS. Real ones are a few KiB.
const maxDocBytes = 1 << 20

// defaultHTTPClient is used when Config.HTTPClient is nil. The library would
// use http.DefaultClient, which never times out: a black-holed IdP would
// hold a request (and, through the library's cache lock, every request for
// that issuer) forever.
func defaultHTTPClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	proxy := http.ProxyFromEnvironment
	if dial == nil {
		dial = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	} else {
		// A caller-supplied dialer decides where the IdP is reached; an
		// environment proxy would bypass it.
		proxy = nil
		dial = dialWithTimeout(dial, 3*time.Second)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:                 proxy,
			DialContext:           dial,
			TLSHandshakeTimeout:   3 * time.Second,
			ResponseHeaderTimeout: 5 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: noDowngrade,
	}
}

func dialWithTimeout(dial func(ctx context.Context, network, addr string) (net.Conn, error), d time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return dial(ctx, network, addr)
	}
}

// guardClient returns a copy of c whose transport refuses error statuses and
// oversized bodies. This is done at the transport because the library
// fetches the JWKS itself (jwk.Fetch) and neither checks the status nor
// bounds the body.
func guardClient(c *http.Client) *http.Client {
	cp := *c
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = guardedTransport{base: base}
	return &cp
}

type guardedTransport struct{ base http.RoundTripper }

func (t guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// Redirects pass through: http.Client follows them above the transport.
	if resp.StatusCode >= 400 || resp.StatusCode < 200 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s answered HTTP %d", scrub.URL(req.URL.String()), resp.StatusCode)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxDocBytes}
	return resp, nil
}

var errDocTooLarge = errors.New("response larger than 1 MiB")

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the limit from a larger one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errDocTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// noDowngrade follows at most three redirects and never from https to http,
// so keys cannot be served over a link an attacker could rewrite.
func noDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing redirect from https to %s", scrub.URL(req.URL.String()))
	}
	return nil
}

// allowedKeyURL reports whether agw will fetch keys or metadata from u:
// https, or http on a loopback host (local test issuers), as store accepts
// for issuers.
func allowedKeyURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}
