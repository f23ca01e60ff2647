package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// The daemon refuses agent requests, and reports not ready, while it could
// not record them: when the audit writer's store fails or hangs, or when
// the storage under the store stops taking writes (the directory removed,
// the filesystem read-only or full). A store that keeps its recent writes
// in memory would otherwise accept records for a while and lose them.

// probeEvery is how often the storage is probed.
const probeEvery = time.Second

// health is why the daemon cannot serve safely now ("" when it can).
type health struct {
	why atomic.Pointer[string]
}

func (h *health) set(why string) { h.why.Store(&why) }

func (h *health) get() string {
	if p := h.why.Load(); p != nil {
		return *p
	}
	return ""
}

// watchHealth probes the store (its directory, or the database) and the
// audit writer every
// probeEvery until ctx is done, logging each change of state.
func (d *daemon) watchHealth(ctx context.Context, probe func(context.Context) error) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	last := ""
	for {
		why := ""
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := probe(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			why = err.Error()
		} else if err := d.audit.Healthy(); err != nil {
			why = err.Error()
		}
		d.health.set(why)
		if why != last {
			if why != "" {
				d.log.Error("refusing agent requests: they could not be recorded", "why", why)
			} else {
				d.log.Info("storage and audit trail healthy again; serving agent requests")
			}
			last = why
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probeDir writes, syncs and removes a small file in dir: it fails when
// the directory is gone, the filesystem is read-only or full.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	defer os.Remove(name)
	var buf [4096]byte
	if _, err := f.Write(buf[:]); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("remove probe %s: %w", filepath.Base(name), err)
	}
	return nil
}
