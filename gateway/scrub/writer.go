package scrub

import (
	"io"
	"sync"
	"time"
)

// Writer scrubs a response body on its way to the agent: each Write goes
// out at once, less a held tail that may be the start of a form. A held
// tail is decided by the next Write or, after the hold timeout, by a Flush
// from the timer (a partial match of at least MinPartial bytes is redacted,
// never released as it is). Writer is safe for concurrent use: the timer
// writes under the same lock as Write, so dst sees one writer at a time.
type Writer struct {
	mu     sync.Mutex
	st     *Stream
	dst    io.Writer
	flush  func() error
	hold   time.Duration
	timer  *time.Timer
	buf    []byte
	err    error
	closed bool
}

// WriterConfig is what a Writer writes to.
type WriterConfig struct {
	// Dst receives the scrubbed body.
	Dst io.Writer
	// Flush, when set, pushes what Dst buffered to the agent; Writer calls
	// it after a hold is resolved by the timer, and Writer.Flush calls it.
	Flush func() error
	// Hold bounds how long a partial match is held: 0 means DefaultHold,
	// negative holds until more input or Close.
	Hold time.Duration
}

// NewWriter returns a Writer of s's forms to cfg.Dst.
func (s *Set) NewWriter(cfg WriterConfig) *Writer {
	w := &Writer{st: s.NewStream(), dst: cfg.Dst, flush: cfg.Flush, hold: cfg.Hold}
	if w.hold == 0 {
		w.hold = DefaultHold
	}
	return w
}

// Write scrubs p and writes what can be released. It reports len(p) when
// dst took everything released.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, io.ErrClosedPipe
	}
	w.buf = w.st.Write(w.buf[:0], p)
	if err := w.write(); err != nil {
		return 0, err
	}
	w.arm()
	return len(p), nil
}

func (w *Writer) write() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.dst.Write(w.buf); err != nil {
		w.err = err
		return err
	}
	return nil
}

// arm starts the hold timer when bytes are held, and stops it when not.
func (w *Writer) arm() {
	switch {
	case !w.st.Holding() || w.hold < 0:
		if w.timer != nil {
			w.timer.Stop()
		}
	case w.timer == nil:
		w.timer = time.AfterFunc(w.hold, w.expire)
	default:
		w.timer.Reset(w.hold)
	}
}

// expire resolves a hold that timed out and pushes it to the agent.
func (w *Writer) expire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil || !w.st.Holding() {
		return
	}
	w.buf = w.st.Flush(w.buf[:0], false)
	if w.write() == nil && w.flush != nil {
		_ = w.flush()
	}
}

// Flush calls the configured Flush under the Writer's lock. Held bytes
// stay held: flushing must not decide a partial match.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flush == nil || w.closed {
		return nil
	}
	return w.flush()
}

// Close ends the body: the held tail is resolved and written. It does not
// close Dst.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.err != nil {
		return w.err
	}
	w.buf = w.st.Flush(w.buf[:0], true)
	return w.write()
}

// Abort ends the body without writing what is held (the stream was cut:
// releasing a partial match would be a leak) and stops the timer.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// Redactions is the number of markers written so far.
func (w *Writer) Redactions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.count
}

// Reader scrubs what it reads from a source. It has no hold timeout: a
// held tail waits for the next read or the end of the source. Use it where
// the consumer pulls (a WebSocket frame, a test); the HTTP response path
// uses Writer.
type Reader struct {
	src     io.Reader
	st      *Stream
	buf     []byte
	pending []byte
	scratch []byte
	err     error
}

// NewReader returns a Reader of src scrubbed of s's forms.
func (s *Set) NewReader(src io.Reader) *Reader {
	return &Reader{src: src, st: s.NewStream()}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.scratch == nil {
			r.scratch = make([]byte, 32<<10)
		}
		n, err := r.src.Read(r.scratch)
		r.buf = r.st.Write(r.buf[:0], r.scratch[:n])
		if err != nil {
			if err == io.EOF {
				r.buf = r.st.Flush(r.buf, true)
			}
			r.err = err
		}
		r.pending = r.buf
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// Redactions is the number of markers written so far.
func (r *Reader) Redactions() int { return r.st.count }
