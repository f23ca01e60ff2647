package scrub

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// agentConn is what the agent has received, and how often it was flushed.
type agentConn struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	flushes int
}

func (a *agentConn) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.buf.Write(p)
}

func (a *agentConn) Flush() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushes++
	return nil
}

func (a *agentConn) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.buf.String()
}

// Each SSE event goes out on the write that brought it: only a possible
// prefix is held, and only until it is decided.
func TestWriterHoldsOnlyPartialMatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := New([]byte(canary))
		a := &agentConn{}
		w := set.NewWriter(WriterConfig{Dst: a, Flush: a.Flush})
		write := func(s string) {
			if _, err := w.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		write("data: one\n\n")
		if got := a.String(); got != "data: one\n\n" {
			t.Fatalf("first event: %q", got)
		}
		write("data: " + canary[:8])
		if got := a.String(); got != "data: one\n\ndata: " {
			t.Fatalf("with a partial match: %q", got)
		}
		write(canary[8:] + "\n\n")
		if got := a.String(); got != "data: one\n\ndata: "+Marker+"\n\n" {
			t.Fatalf("completed match: %q", got)
		}
		write("data: " + canary[:8])
		write("!\n\n")
		if got := a.String(); !strings.HasSuffix(got, "data: "+canary[:8]+"!\n\n") {
			t.Fatalf("a partial match that failed is passed on: %q", got)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if w.Redactions() != 1 {
			t.Errorf("redactions %d", w.Redactions())
		}
	})
}

// A backend that sends all of the secret but its last byte and then waits:
// after the hold timeout the agent gets a marker, not the partial secret,
// and when the last byte comes it is dropped too.
func TestWriterHoldTimeoutRedacts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := New([]byte(canary))
		a := &agentConn{}
		w := set.NewWriter(WriterConfig{Dst: a, Flush: a.Flush})
		_, _ = w.Write([]byte("data: " + canary[:len(canary)-1]))
		time.Sleep(DefaultHold / 2)
		synctest.Wait()
		if got := a.String(); got != "data: " {
			t.Fatalf("before the timeout: %q", got)
		}
		time.Sleep(DefaultHold)
		synctest.Wait()
		if got := a.String(); got != "data: "+Marker {
			t.Fatalf("after the timeout: %q", got)
		}
		if a.flushes == 0 {
			t.Error("the timed-out hold was not flushed to the agent")
		}
		_, _ = w.Write([]byte(canary[len(canary)-1:] + "\n\n"))
		_ = w.Close()
		if got := a.String(); got != "data: "+Marker+"\n\n" {
			t.Fatalf("the rest of the secret after the timeout: %q", got)
		}
		if w.Redactions() != 1 {
			t.Errorf("redactions %d", w.Redactions())
		}
	})
}

// A held tail too short to redact (under MinPartial) goes out at the
// timeout; if it was the start of the secret after all, the rest is
// redacted when it comes.
func TestWriterShortHoldReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := New([]byte(canary))
		a := &agentConn{}
		w := set.NewWriter(WriterConfig{Dst: a})
		_, _ = w.Write([]byte("x sk-"))
		time.Sleep(2 * DefaultHold)
		synctest.Wait()
		if got := a.String(); got != "x sk-" {
			t.Fatalf("short hold after the timeout: %q", got)
		}
		_, _ = w.Write([]byte(canary[3:] + " y"))
		_ = w.Close()
		if got := a.String(); got != "x sk-"+Marker+" y" {
			t.Fatalf("got %q", got)
		}
	})
}

// Abort (a cut stream) releases nothing held, and the timer writes nothing
// after it.
func TestWriterAbort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := New([]byte(canary))
		a := &agentConn{}
		w := set.NewWriter(WriterConfig{Dst: a})
		_, _ = w.Write([]byte("x " + canary[:10]))
		w.Abort()
		time.Sleep(2 * DefaultHold)
		synctest.Wait()
		if got := a.String(); got != "x " {
			t.Fatalf("got %q", got)
		}
	})
}
