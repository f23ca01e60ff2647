package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agw-dev/agw/state"
)

// TestLastSeenSurvivesRestart: the times written by one daemon's state are
// what the next one shows, and they are written on the minute, not per
// request.
func TestLastSeenSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		s := state.New()
		l := newLastSeen(dir, s, slog.New(slog.DiscardHandler))
		l.load()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.run(ctx); close(done) }()

		seenAt := time.Now().Add(-time.Second)
		for range 1000 {
			s.MarkSeen("support-bot", seenAt)
		}
		synctest.Wait()
		if _, err := os.Stat(filepath.Join(dir, LastSeenFile)); err == nil {
			t.Fatal("written before the minute was up")
		}
		time.Sleep(lastSeenEvery)
		synctest.Wait()
		cancel()
		<-done

		next := state.New()
		newLastSeen(dir, next, slog.New(slog.DiscardHandler)).load()
		if got := next.Seen("support-bot"); !got.Equal(seenAt) {
			t.Errorf("after restart: last seen %v, want %v", got, seenAt)
		}
		if got := next.Seen("never-called"); !got.IsZero() {
			t.Errorf("an agent that never called: %v", got)
		}
	})
}

// TestLastSeenFlushAtShutdown: the final flush keeps what the minute's tick
// had not written yet; a damaged file is ignored, not fatal.
func TestLastSeenFlushAtShutdown(t *testing.T) {
	dir := t.TempDir()
	s := state.New()
	l := newLastSeen(dir, s, slog.New(slog.DiscardHandler))
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.MarkSeen("etl", at)
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	next := state.New()
	newLastSeen(dir, next, slog.New(slog.DiscardHandler)).load()
	if !next.Seen("etl").Equal(at) {
		t.Errorf("last seen %v, want %v", next.Seen("etl"), at)
	}
	if err := os.WriteFile(filepath.Join(dir, LastSeenFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := state.New()
	newLastSeen(dir, damaged, slog.New(slog.DiscardHandler)).load()
	if !damaged.Seen("etl").IsZero() {
		t.Error("a damaged file restored times")
	}
}
