package gateway

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/agw-dev/agw/store"
)

// retentionInterval is how often expired audit records are pruned: hourly,
// or a quarter of a short retention, so a record outlives the retention by
// at most that interval.
func retentionInterval(keep time.Duration) time.Duration {
	return min(time.Hour, max(keep/4, 250*time.Millisecond))
}

// runRetention prunes audit records older than Config.AuditRetention at
// start and then every retentionInterval, until ctx is done. Failures are
// logged and retried at the next tick: retention never stops the daemon.
func (d *daemon) runRetention(ctx context.Context) error {
	keep := d.cfg.AuditRetention
	if keep <= 0 {
		return nil
	}
	every := retentionInterval(keep)
	d.log.Info("audit retention on", "keep", keep.String(), "every", every.String())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		d.pruneAudit(ctx, keep)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pruneAudit removes the records older than keep and, if any went, says so
// in the trail itself: an admin event by the daemon's own uid.
func (d *daemon) pruneAudit(ctx context.Context, keep time.Duration) {
	before := d.now().Add(-keep).UTC()
	n, err := d.st.PruneAudit(ctx, before)
	if err != nil && ctx.Err() == nil {
		d.log.Error("prune audit trail", "err", err, "removed", n)
	}
	if n == 0 {
		return
	}
	ev := store.AuditEvent{
		Time:     d.now(),
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
	if err := d.st.AppendAudit(context.WithoutCancel(ctx), []store.AuditEvent{ev}); err != nil {
		d.log.Error("record audit prune", "err", err, "removed", n)
		return
	}
	d.audit.Notify()
	d.log.Info("pruned audit trail", "removed", n, "before", before)
}
