package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/agw-dev/agw/gateway/policy"
	"github.com/agw-dev/agw/store"
)

// Revocation reaches requests already in flight: a WebSocket or a long
// response stream is checked again whenever the view changes (and once a
// second, for tokens that expire), and closed within that time when its
// token was revoked or expired, its agent disabled or removed, its grant
// removed or narrowed, or its backend's credential rotated or the backend
// removed. A WebSocket gets a close frame with code 1008 (policy
// violation) first; an HTTP/2 stream is reset; an HTTP/1.1 response is cut
// off by closing the connection. The audit record says why.

// errRevoked cancels an exchange whose authorisation ended mid-flight.
var errRevoked = errors.New("authorisation ended while the request was in flight")

// liveSet holds the allowed exchanges being forwarded.
type liveSet struct {
	mu sync.Mutex
	m  map[*exchange]struct{}
}

func (l *liveSet) add(ex *exchange) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[*exchange]struct{})
	}
	l.m[ex] = struct{}{}
	l.mu.Unlock()
}

func (l *liveSet) remove(ex *exchange) {
	l.mu.Lock()
	delete(l.m, ex)
	l.mu.Unlock()
}

func (l *liveSet) snapshot() []*exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*exchange, 0, len(l.m))
	for ex := range l.m {
		out = append(out, ex)
	}
	return out
}

// recheck closes every live exchange that the view no longer allows.
func (p *Gateway) recheck() {
	now := p.now()
	for _, ex := range p.live.snapshot() {
		if why := p.stillAllowed(ex, now); why != "" {
			ex.revoke(why)
		}
	}
}

// stillAllowed re-applies identification and policy to an exchange in
// flight; it returns why the exchange must end, or "".
func (p *Gateway) stillAllowed(ex *exchange, now time.Time) string {
	name := ex.ev.Agent
	a := p.state.Agent(name)
	switch {
	case a == nil:
		return "agent " + name + " was removed"
	case a.Disabled:
		return "agent " + name + " was disabled"
	}
	if id := ex.ident.TokenID; ex.ident.AuthMethod == "token" {
		t := p.state.Token(id)
		switch {
		case t == nil:
			return "gateway token " + id + " was removed"
		case !t.RevokedAt.IsZero():
			return "gateway token " + id + " was revoked"
		case !t.Active(now):
			return "gateway token " + id + " expired"
		}
	}
	rt := p.state.Backend(ex.ev.Backend)
	switch {
	case rt == nil:
		return "backend " + ex.ev.Backend + " was removed"
	case rt.Backend.CredentialVersion != ex.ev.CredentialVersion:
		return "the credential of backend " + ex.ev.Backend + " was rotated"
	}
	if d := policy.Authorize(p.state.Grant(name, ex.ev.Backend), name, ex.ev.Backend, ex.ev.Method, ex.norm); d != nil {
		return "the grant no longer allows it: " + d.Reason
	}
	return ""
}

// revoke ends the exchange once: it records why, closes an upgraded
// connection with a WebSocket close frame (1008), and cancels the
// forwarding (which resets a stream or closes the connection).
func (ex *exchange) revoke(why string) {
	ex.revokeOnce.Do(func() {
		ex.revoked.Store(&why)
		if c := ex.rec.upgraded(); c != nil {
			c.closeWith1008(why)
		}
		if ex.cancel != nil {
			ex.cancel(errRevoked)
		}
	})
}

// revokedReason is why the exchange was ended, or "".
func (ex *exchange) revokedReason() string {
	if p := ex.revoked.Load(); p != nil {
		return *p
	}
	return ""
}

// wsClose1008 is a server-to-client WebSocket close frame with status 1008
// and a reason (at most 123 bytes, the limit of a control frame).
func wsClose1008(reason string) []byte {
	const max = 123
	if len(reason) > max {
		reason = reason[:max]
	}
	f := make([]byte, 0, 4+len(reason))
	f = append(f, 0x88, byte(2+len(reason)))
	f = binary.BigEndian.AppendUint16(f, 1008)
	return append(f, reason...)
}

// watchRevocations rechecks live exchanges after every change the view
// applies and once a second (token expiry), until ctx is done.
func (p *Gateway) watchRevocations(ctx context.Context) {
	changed := make(chan struct{}, 1)
	p.state.OnChange(func(store.ChangeSet) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
		p.recheck()
	}
}
