package limit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
)

// Failed authentications are throttled so that a client retrying a bad
// credential, or flooding without one, is refused before any lookup: after
// AuthFailBurst failures further attempts get 429 until the bucket refills
// at AuthFailRate.
const (
	AuthFailPerMinute = 10
	AuthFailBurst     = 10
)

var authFailRate = Rate{PerSecond: float64(AuthFailPerMinute) / 60, Burst: AuthFailBurst}

// AuthThrottle counts failed authentications through a Limiter.
//
// It is keyed so that a valid credential is never throttled by others'
// failures: a request that presents a credential is counted under a hash of
// that exact credential (a client repeating a revoked or mistyped token is
// slowed; a holder of a valid token, which never fails, is not), and only a
// request that presents no credential at all is counted under its client
// address (an IPv4 address, or the IPv6 /64 one host usually holds). Agents
// behind one NAT therefore never lock each other out with their tokens.
type AuthThrottle struct {
	lim Limiter
}

// NewAuthThrottle throttles through lim.
func NewAuthThrottle(lim Limiter) *AuthThrottle { return &AuthThrottle{lim: lim} }

// CredentialKey is the throttle key of a presented credential.
func CredentialKey(cred string) string {
	sum := sha256.Sum256([]byte(cred))
	return "authfail/cred/" + hex.EncodeToString(sum[:12])
}

// AddressKey is the throttle key of a request that presented no
// credential, from its remote address ("" when it does not parse).
func AddressKey(remoteAddr string) string {
	a := ClientAddr(remoteAddr)
	if !a.IsValid() {
		return "authfail/addr/invalid"
	}
	return "authfail/addr/" + a.String()
}

// ClientAddr is the address a remote "ip:port" is counted under: the
// address itself for IPv4, its /64 for IPv6; the zero Addr when it does not
// parse.
func ClientAddr(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Blocked returns the 429 for key when its failures are used up, or nil.
// A limiter that cannot decide blocks (fail closed).
func (t *AuthThrottle) Blocked(ctx context.Context, key string, now time.Time) *deny.Denial {
	wait, err := t.lim.Wait(ctx, now, Bucket{Key: key, Rate: authFailRate})
	if err != nil {
		return unavailable(err)
	}
	if wait <= 0 {
		return nil
	}
	who := "this credential (too many failed authentications with it)"
	if len(key) > 14 && key[:14] == "authfail/addr/" {
		who = "this client address (too many requests without a credential)"
	}
	d := rateLimited("auth failures 10/m", who, wait)
	d.Limit = KindAuthFailure
	return d
}

// Fail records a failed authentication under key at now.
func (t *AuthThrottle) Fail(ctx context.Context, key string, now time.Time) {
	_, _, _ = t.lim.Take(ctx, now, Bucket{Key: key, Rate: authFailRate})
}
