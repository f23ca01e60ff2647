package audit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/agw-dev/agw/store"
)

// Pruner is the store's side of retention: it drops the oldest audit
// records, keeping the rest verifiable, and appends the admin event that
// says so.
type Pruner interface {
	PruneAudit(ctx context.Context, before time.Time) (int, error)
	AppendAudit(ctx context.Context, evs []store.AuditEvent) error
}

// Retention prunes audit records older than Keep.
type Retention struct {
	Store  Pruner
	Log    *Log // woken after a prune; may be nil
	Keep   time.Duration
	Logger *slog.Logger
	Now    func() time.Time // nil → time.Now
}

// retentionInterval is how often expired audit records are pruned: hourly,
// or a quarter of a short retention, so a record outlives the retention by
// at most that interval.
func retentionInterval(keep time.Duration) time.Duration {
	return min(time.Hour, max(keep/4, 250*time.Millisecond))
}

// Run prunes audit records older than Keep at start and then every
// retentionInterval, until ctx is done. Failures are logged and retried at
// the next tick: retention never stops the daemon. Keep ≤ 0 keeps
// everything.
func (r *Retention) Run(ctx context.Context) error {
	keep := r.Keep
	if keep <= 0 {
		return nil
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	every := retentionInterval(keep)
	r.Logger.Info("audit retention on", "keep", keep.String(), "every", every.String())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.prune(ctx, keep)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pruneAudit removes the records older than keep and, if any went, says so
// in the trail itself: an admin event by the daemon's own uid.
func (r *Retention) prune(ctx context.Context, keep time.Duration) {
	before := r.Now().Add(-keep).UTC()
	n, err := r.Store.PruneAudit(ctx, before)
	if err != nil && ctx.Err() == nil {
		r.Logger.Error("prune audit trail", "err", err, "removed", n)
	}
	if n == 0 {
		return
	}
	ev := store.AuditEvent{
		Time:     r.Now(),
		Kind:     store.KindAdmin,
		Action:   "audit.prune",
		Target:   fmt.Sprintf("%d records", n),
		Reason:   fmt.Sprintf("audit retention %s: removed %d records before %s", keep, n, before.Format(time.RFC3339)),
		Decision: store.Allow,
		PeerUID:  os.Getuid(),
		PeerPID:  os.Getpid(),
	}
	// Written directly, not queued, so it lands even when ctx ends the
	// loop right after; the removal already happened.
	if err := r.Store.AppendAudit(context.WithoutCancel(ctx), []store.AuditEvent{ev}); err != nil {
		r.Logger.Error("record audit prune", "err", err, "removed", n)
		return
	}
	if r.Log != nil {
		r.Log.Notify()
	}
	r.Logger.Info("pruned audit trail", "removed", n, "before", before)
}
