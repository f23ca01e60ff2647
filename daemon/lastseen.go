package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/agw-dev/agw/state"
)

// "LAST SEEN" survives a restart: the in-memory last-request times are
// written to a small file in the data directory every lastSeenEvery and at
// shutdown, never once per request, and read back at start. The file is
// per daemon (in cluster mode each replica keeps its own), and losing it
// loses only these times.

const (
	// LastSeenFile holds each agent's last request time, in the data directory.
	LastSeenFile  = "last-seen.json"
	lastSeenEvery = time.Minute
)

// lastSeen persists a State's last-seen times to path.
type lastSeen struct {
	path    string
	state   *state.State
	log     *slog.Logger
	written map[string]time.Time
}

// load marks every agent in the file as seen then; a missing file is an
// empty one, a damaged one is logged and ignored.
func (l *lastSeen) load() {
	b, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var m map[string]time.Time
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		l.log.Warn("last-seen times not restored", "file", l.path, "err", err)
		return
	}
	for agent, t := range m {
		if l.state.Seen(agent).Before(t) {
			l.state.MarkSeen(agent, t)
		}
	}
	l.written = m
}

// flush writes the times when they changed since the last write, atomically.
func (l *lastSeen) flush() error {
	now := l.state.SeenAll()
	if maps.EqualFunc(now, l.written, time.Time.Equal) {
		return nil
	}
	b, err := json.Marshal(now)
	if err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write last-seen times: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("write last-seen times: %w", err)
	}
	l.written = now
	return nil
}

// run flushes every lastSeenEvery until ctx is done; the caller flushes
// once more after the last request has finished.
func (l *lastSeen) run(ctx context.Context) {
	t := time.NewTicker(lastSeenEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.flush(); err != nil {
				l.log.Warn("last-seen times not saved", "err", err)
			}
		}
	}
}

func newLastSeen(dataDir string, s *state.State, log *slog.Logger) *lastSeen {
	return &lastSeen{path: filepath.Join(dataDir, LastSeenFile), state: s, log: log}
}
