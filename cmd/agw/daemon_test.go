package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/daemon"
)

// fakeDaemon is an admin API server on a Unix socket that answers the
// routes a test registers with canned JSON and records every request.
type fakeDaemon struct {
	t      *testing.T
	socket string
	mux    *http.ServeMux

	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	Method, Path, Query string
	Body                []byte
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	// Unix socket paths are limited to ~100 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "agwt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &fakeDaemon{t: t, socket: filepath.Join(dir, "admin.sock"), mux: http.NewServeMux()}
	ln, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(d.serveHTTP)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

func (d *fakeDaemon) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	d.reqs = append(d.reqs, recordedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body})
	d.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	h, pattern := d.mux.Handler(r)
	if pattern == "" {
		writeAdminError(w, http.StatusNotFound, admin.CodeNotFound, "fake daemon: no route for "+r.Method+" "+r.URL.Path)
		return
	}
	h.ServeHTTP(w, r)
}

// reply answers pattern ("POST /v1/backends") with status and v as JSON.
func (d *fakeDaemon) reply(pattern string, status int, v any) {
	d.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if v != nil {
			_ = json.NewEncoder(w).Encode(v)
		}
	})
}

// fail answers pattern with an admin API error.
func (d *fakeDaemon) fail(pattern string, status int, code, msg string) {
	d.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
		writeAdminError(w, status, code, msg)
	})
}

func writeAdminError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(admin.ErrorBody{Error: admin.ErrorDetail{Code: code, Message: msg}})
}

// requests returns what the daemon received so far.
func (d *fakeDaemon) requests() []recordedRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]recordedRequest(nil), d.reqs...)
}

// only returns the single request received, failing the test otherwise.
func (d *fakeDaemon) only() recordedRequest {
	d.t.Helper()
	reqs := d.requests()
	if len(reqs) != 1 {
		d.t.Fatalf("daemon got %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs agw in-process against socket with the given stdin and environment.
type cli struct {
	t      *testing.T
	socket string
	env    map[string]string
	now    time.Time
	served *daemon.Config // set when `agw serve` runs
}

func newCLI(t *testing.T, socket string) *cli {
	return &cli{t: t, socket: socket, env: map[string]string{}, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	a := &app{
		getenv: func(k string) string { return c.env[k] },
		initDir: func(string) (bool, error) {
			return true, nil
		},
		serve: func(_ context.Context, cfg daemon.Config) error {
			c.served = &cfg
			return nil
		},
		now:       func() time.Time { return c.now },
		clientTTL: 5 * time.Second,
	}
	var out, errOut bytes.Buffer
	full := append([]string{"--socket", c.socket}, args...)
	code := a.run(context.Background(), full, strings.NewReader(stdin), &out, &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}
