// Package e2e drives the real agw binary as operators and agents do: it
// builds it once, starts `agw serve` on loopback ports with a temporary data
// directory, and runs CLI commands and HTTPS clients against it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
)

// agwBin is the binary under test, built once in TestMain.
var agwBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agw-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by other users: tests run CLI commands as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agwBin = filepath.Join(dir, "agw")
	build := exec.Command("go", "build", "-o", agwBin, "../cmd/agw")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agw:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireEnv skips a test whose environment is missing, or fails it when
// AGW_E2E_REQUIRE=1 says the environment must be there (CI).
func requireEnv(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("AGW_E2E_REQUIRE") == "1" {
		t.Fatalf("required environment missing: %s (AGW_E2E_REQUIRE=1)", why)
	}
	t.Skip(why)
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one agw installation: a data directory and socket, and the daemon
// when it runs.
type env struct {
	t       *testing.T
	dataDir string
	socket  string
	daemon  *exec.Cmd
	log     *syncBuffer
	exited  chan error
	status  admin.Status
	// logs keeps the output of every daemon run of this env.
	logs []*syncBuffer
	// transcript is every CLI output, for secret searches.
	transcript []string
}

// newEnv makes a fresh, empty installation. Its paths are short: Unix socket
// paths are limited to about 100 bytes.
func newEnv(t *testing.T) *env {
	t.Helper()
	root, err := os.MkdirTemp("", "agw-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dataDir: filepath.Join(root, "data"), socket: filepath.Join(root, "admin.sock")}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			for i, l := range e.logs {
				t.Logf("daemon log (run %d):\n%s", i+1, l.String())
			}
		}
		os.RemoveAll(root)
	})
	return e
}

// start runs `agw serve` on loopback ports chosen by the kernel and waits
// until its admin API answers.
func (e *env) start(extra ...string) {
	e.t.Helper()
	args := append([]string{"serve", "--data-dir", e.dataDir, "--socket", e.socket,
		"--https-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0",
		"--upstream-dns", "127.0.0.1:1", "--log-level", "debug"}, extra...)
	cmd := exec.Command(agwBin, args...)
	e.log = &syncBuffer{}
	e.logs = append(e.logs, e.log)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon = cmd
	e.exited = make(chan error, 1)
	go func() { e.exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, code := e.run("", "status", "-o", "json")
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &e.status); err != nil {
				e.t.Fatalf("status -o json: %v\n%s", err, out)
			}
			return
		}
		select {
		case err := <-e.exited:
			e.daemon = nil
			e.t.Fatalf("agw serve exited before it was ready: %v\n%s", err, e.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agw serve not ready after 20s:\n%s", e.log.String())
		}
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (e *env) stop() {
	if e.daemon == nil {
		return
	}
	_ = e.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.exited:
		if err != nil {
			e.t.Errorf("agw serve exited with %v after SIGTERM\n%s", err, e.log.String())
		}
	case <-time.After(30 * time.Second):
		_ = e.daemon.Process.Kill()
		<-e.exited
		e.t.Errorf("agw serve did not stop within 30s of SIGTERM")
	}
	e.daemon = nil
}

// run executes an agw CLI command against this installation.
func (e *env) run(stdin string, args ...string) (stdout, stderr string, code int) {
	return e.runEnv(nil, stdin, args...)
}

func (e *env) runEnv(extraEnv []string, stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agwBin, append([]string{"--socket", e.socket, "--data-dir", e.dataDir}, args...)...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	e.transcript = append(e.transcript, o.String(), er.String())
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		e.t.Fatalf("run agw %v: %v", args, err)
	}
	return o.String(), er.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(stdin, args...)
	if code != 0 {
		e.t.Fatalf("agw %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// jsonOut runs a command with -o json and decodes its output into v.
func (e *env) jsonOut(v any, args ...string) {
	e.t.Helper()
	out := e.ok("", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("agw %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// eventually polls cond until it holds or the timeout passes; the caller
// asserts afterwards, so a timeout shows the last observed state.
func eventually(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return
		}
	}
}
