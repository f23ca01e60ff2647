// Package clientcreds obtains OAuth2 client-credentials tokens for backends
// whose credential is injected as oauth2: the backend's sealed credential is
// the client secret, and the gateway injects the access token it buys with
// it. Tokens are cached and refreshed before they expire; one fetch serves
// every concurrent caller; a failing token endpoint is backed off from and
// answered with ErrTokenUnavailable at once. No error ever carries the
// client secret or a token.
package clientcreds

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agw-dev/agw/gateway/scrub"
	"github.com/agw-dev/agw/store"
)

// ErrTokenUnavailable matches (errors.Is) every failure to obtain a token.
// The proxy answers 502: the agent's request was fine, the backend's token
// endpoint was not.
var ErrTokenUnavailable = errors.New("OAuth2 token unavailable")

const (
	// fetchTimeout bounds one Token() fetch, which x/oauth2 may make as two
	// requests while it learns how the endpoint wants the client secret.
	fetchTimeout = 10 * time.Second
	// assumedLifetime is used for tokens whose response has no expires_in.
	assumedLifetime = 5 * time.Minute
	// maxStaleMargin is how long before its expiry a token stops being
	// handed out, so it does not expire on its way to the backend.
	maxStaleMargin = 10 * time.Second
	firstBackoff   = time.Second
	maxBackoff     = 30 * time.Second
)

// reservedParams are token request fields Params may not set: they would
// change the grant or carry credentials outside the sealed secret.
var reservedParams = []string{"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type"}

// Options tunes a Source. The zero value is usable.
type Options struct {
	// HTTPClient talks to the token endpoint; nil means one with a 5s overall
	// and 3s dial timeout. Redirects are never followed either way: one
	// would resend the client secret to wherever it points.
	HTTPClient *http.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// EarlyRefresh is how long before expiry a token is replaced. Zero
	// means the larger of 60s and 10% of the token's lifetime. Either way
	// it is at most half the lifetime.
	EarlyRefresh time.Duration
	// Logger receives fetch failures (never secrets); nil discards.
	Logger *slog.Logger
}

// Source hands out access tokens for one backend. It is safe for
// concurrent use.
type Source struct {
	cfg     *clientcredentials.Config
	secret  string
	scrub   *scrub.Set // every form of the client secret, to scrub from errors
	host    string
	client  *http.Client
	now     func() time.Time
	early   time.Duration
	log     *slog.Logger
	fetches atomic.Uint64

	mu       sync.Mutex
	tok      *cachedToken
	inflight *fetchCall
	failures int
	retryAt  time.Time // while backing off, no fetch before this
	lastErr  error
}

type cachedToken struct {
	value     string
	refreshAt time.Time // replaced from here on
	staleAt   time.Time // never handed out from here on
}

type fetchCall struct {
	done  chan struct{}
	value string
	err   error
}

// New returns a Source for cfg. clientSecret is copied; the caller may wipe
// its slice. Nothing is fetched until the first Token.
func New(cfg store.OAuth2, clientSecret []byte, opts Options) *Source {
	s := &Source{
		secret: string(clientSecret),
		client: opts.HTTPClient,
		now:    opts.Now,
		early:  opts.EarlyRefresh,
		log:    opts.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = defaultHTTPClient()
	}
	noRedirects := *s.client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &noRedirects

	s.host = cfg.TokenURL
	if u, err := url.Parse(cfg.TokenURL); err == nil && u.Host != "" {
		s.host = u.Host
	}
	params := url.Values{}
	for k, v := range cfg.Params {
		if isReserved(k) || (k == "scope" && len(cfg.Scopes) > 0) {
			s.log.Warn("clientcreds: ignoring a token request parameter the gateway sets itself", "token_host", s.host, "param", k)
			continue
		}
		params.Set(k, v)
	}
	if s.secret != "" {
		// Every encoding the scrubber knows, of the secret and of the Basic
		// credential it travels in.
		s.scrub = scrub.New([]byte(s.secret), []byte(url.QueryEscape(cfg.ClientID)+":"+url.QueryEscape(s.secret)))
	}
	s.cfg = &clientcredentials.Config{
		ClientID:       cfg.ClientID,
		ClientSecret:   s.secret,
		TokenURL:       cfg.TokenURL,
		Scopes:         append([]string(nil), cfg.Scopes...),
		EndpointParams: params,
	}
	return s
}

func isReserved(k string) bool {
	for _, r := range reservedParams {
		if k == r {
			return true
		}
	}
	return false
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   3 * time.Second,
			ResponseHeaderTimeout: 5 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
	}
}

// Token returns a usable access token: the cached one until it is due for
// refresh; then a fresh one, or the cached one while it is still valid and
// the refresh fails. It never returns a token known to be expired. Failure
// is ErrTokenUnavailable, returned at once while backing off after a failed
// fetch (1s doubling to 30s), or ctx's error.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	now := s.now()
	t := s.tok
	if t != nil && now.Before(t.refreshAt) {
		s.mu.Unlock()
		return t.value, nil
	}
	usable := t != nil && now.Before(t.staleAt)
	c := s.inflight
	if c == nil {
		if now.Before(s.retryAt) {
			err := s.lastErr
			s.mu.Unlock()
			if usable {
				return t.value, nil
			}
			return "", err
		}
		c = &fetchCall{done: make(chan struct{})}
		s.inflight = c
		go s.fetch(ctx, c, now)
	} else if usable {
		// Someone is already refreshing; the current token is still good.
		s.mu.Unlock()
		return t.value, nil
	}
	s.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if c.err == nil {
		return c.value, nil
	}
	if usable && s.now().Before(t.staleAt) {
		return t.value, nil
	}
	return "", c.err
}

// fetch obtains a token, records the outcome and wakes the waiters. It is
// detached from the caller's cancellation: other callers may be waiting on
// it, and fetchTimeout bounds it.
func (s *Source) fetch(ctx context.Context, c *fetchCall, start time.Time) {
	s.fetches.Add(1)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	fctx = context.WithValue(fctx, oauth2.HTTPClient, s.client)
	tok, err := s.cfg.Token(fctx)
	if err == nil {
		err = checkTokenType(tok)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(c.done)
	s.inflight = nil
	if err != nil {
		s.failures++
		backoff := min(firstBackoff<<min(s.failures-1, 10), maxBackoff)
		s.retryAt = s.now().Add(backoff)
		c.err = &tokenError{host: s.host, reason: s.reason(err)}
		s.lastErr = c.err
		s.log.Warn("clientcreds: token fetch failed", "token_host", s.host, "err", c.err, "retry_in", backoff)
		return
	}
	life := lifetime(tok)
	s.failures, s.retryAt, s.lastErr = 0, time.Time{}, nil
	expires := start.Add(life)
	staleAt := expires.Add(-min(maxStaleMargin, life/10))
	refreshAt := expires.Add(-s.earlyFor(life))
	if refreshAt.After(staleAt) {
		refreshAt = staleAt
	}
	s.tok = &cachedToken{value: tok.AccessToken, refreshAt: refreshAt, staleAt: staleAt}
	c.value = tok.AccessToken
}

func (s *Source) earlyFor(life time.Duration) time.Duration {
	e := s.early
	if e <= 0 {
		e = max(60*time.Second, life/10)
	}
	return min(e, life/2)
}

// lifetime reads expires_in from the response as sent; x/oauth2 turns it
// into an Expiry on the real clock, which an injected clock cannot use.
func lifetime(tok *oauth2.Token) time.Duration {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case string: // some endpoints send a string
		d, err := time.ParseDuration(strings.TrimSpace(v) + "s")
		if err == nil {
			secs = d.Seconds()
		}
	}
	if secs > 0 && secs < 1e9 {
		return time.Duration(secs * float64(time.Second))
	}
	if !tok.Expiry.IsZero() {
		if d := time.Until(tok.Expiry); d > 0 {
			return d
		}
	}
	return assumedLifetime
}

func checkTokenType(tok *oauth2.Token) error {
	if tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "bearer") {
		return errors.New("the endpoint issued a " + sanitize(tok.TokenType, 32) + " token; only bearer tokens can be injected")
	}
	return nil
}

// Invalidate drops bad, a token the backend refused, so the next Token
// fetches a new one. It does nothing when the cached token is no longer
// bad, so many requests failing with the same token cause one refresh.
func (s *Source) Invalidate(bad string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && subtle.ConstantTimeCompare([]byte(s.tok.value), []byte(bad)) == 1 {
		s.tok = nil
	}
}

// Fetches returns how many times the token endpoint was asked for a token.
func (s *Source) Fetches() uint64 { return s.fetches.Load() }
