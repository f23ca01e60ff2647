package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/agw-dev/agw/store"
)

// Refusals that carry no identity (no agent, no token: malformed requests,
// unknown names, missing or unknown credentials, throttled guessing,
// refused TLS handshakes) cost an attacker nothing to send, so under a
// flood they are aggregated instead of recorded one by one: the first
// sampleBurst of each kind from a client in a sampleWindow are recorded as
// they are, and the rest become one record at the end of the window whose
// reason says how many there were. The store therefore grows by at most
// sampleBurst+1 records per client address, reason, host and status per
// window, or, past sampleMaxKeys kinds, per reason, host and status. A
// record that names an agent or a token is never aggregated.
const (
	sampleWindow  = 10 * time.Second
	sampleBurst   = 20
	sampleMaxKeys = 4096
)

type sampleKey struct {
	client netip.Addr // zero when aggregated across clients
	kind   string     // "request" or "tls"
	host   string
	status int
	reason string
}

type sampleEntry struct {
	first time.Time
	seen  int // recorded one by one in this window
	more  int // counted into the summary
	last  store.AuditEvent
}

// sampler aggregates anonymous refusals; emit records what it lets through.
type sampler struct {
	mu   sync.Mutex
	m    map[sampleKey]*sampleEntry
	emit func(store.AuditEvent)
	now  func() time.Time
}

func anonymousRefusal(ev *store.AuditEvent) bool {
	return ev.Decision == store.Deny && ev.Agent == "" && ev.TokenID == "" && ev.Subject == ""
}

// record lets ev through, or counts it into its window's summary.
func (s *sampler) record(ev store.AuditEvent) {
	if !anonymousRefusal(&ev) {
		s.emit(ev)
		return
	}
	now := s.now()
	k := sampleKey{kind: ev.Kind, host: ev.Host, status: ev.Status, reason: ev.Reason}
	if ap, err := netip.ParseAddrPort(ev.Client); err == nil {
		k.client = ap.Addr().Unmap()
	}
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[sampleKey]*sampleEntry)
	}
	if _, ok := s.m[k]; !ok && len(s.m) >= sampleMaxKeys {
		k.client = netip.Addr{}
	}
	e := s.m[k]
	if e == nil || now.Sub(e.first) >= sampleWindow {
		var due *store.AuditEvent
		if e != nil && e.more > 0 {
			sum := summary(e)
			due = &sum
		}
		s.m[k] = &sampleEntry{first: now, seen: 1}
		s.mu.Unlock()
		if due != nil {
			s.emit(*due)
		}
		s.emit(ev)
		return
	}
	if e.seen < sampleBurst {
		e.seen++
		s.mu.Unlock()
		s.emit(ev)
		return
	}
	e.more++
	e.last = ev
	s.mu.Unlock()
}

// summary is the record that stands for the refusals counted in a window.
func summary(e *sampleEntry) store.AuditEvent {
	ev := e.last
	ev.Reason = fmt.Sprintf("%s (aggregated: %d refusals like this in %s%s, recorded as this one)",
		ev.Reason, e.more, sampleWindow, map[bool]string{true: " from this client", false: " from many clients"}[ev.Client != "" && !strings.HasPrefix(ev.Client, "*")])
	return ev
}

// flush writes the summaries of the windows that have ended, and with all
// set, of every window (at shutdown).
func (s *sampler) flush(all bool) {
	now := s.now()
	var due []store.AuditEvent
	s.mu.Lock()
	for k, e := range s.m {
		if all || now.Sub(e.first) >= sampleWindow {
			if e.more > 0 {
				due = append(due, summary(e))
			}
			delete(s.m, k)
		}
	}
	s.mu.Unlock()
	for _, ev := range due {
		s.emit(ev)
	}
}

// run flushes ended windows every second until ctx is done, then all.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flush(true)
			return
		case <-t.C:
			s.flush(false)
		}
	}
}
