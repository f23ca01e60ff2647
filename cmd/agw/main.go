// Command agw is the agw gateway's single binary: `agw serve` runs the daemon
// and every other command is a client of the daemon's admin API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/agw-dev/agw/admin"
)

// Build information, set at link time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-01-02"
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// Exit codes scripts can rely on; the man pages' EXIT STATUS lists them
// (exitCodes), so add a code there too.
const (
	exitOK         = 0
	exitError      = 1 // the daemon refused the request, or the command failed
	exitUsage      = 2 // the command line was wrong; nothing was sent
	exitDaemonDown = 3 // no daemon answers on the admin socket
	exitTampered   = 4 // agw audit verify found the audit trail altered
)

// exitCodes documents every exit code, in order, for the man pages.
var exitCodes = []struct {
	code int
	what string
}{
	{exitOK, "Success."},
	{exitError, "The command failed: the daemon refused the request (the message says why), or a local step such as reading a file failed."},
	{exitUsage, "The command line was wrong: an unknown command or flag, a missing argument, a bad flag value. Nothing was sent to the daemon."},
	{exitDaemonDown, "No daemon answers on the admin socket: it is not running, or the socket is elsewhere (--socket, AGW_SOCKET)."},
	{exitTampered, "agw audit verify found the audit trail altered: a record, the hash chain or an index does not match."},
}

func main() {
	os.Exit(newApp().run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError is a mistake on the command line: an unknown flag or command, a
// missing or extra argument, a bad flag value. It exits 2 and points at help.
type usageError struct {
	cmdPath string // e.g. "agw backend add"
	err     error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCodeError ends the command with a code other than 1 or with a message
// already printed (msg empty).
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return e.msg }

// report prints err to stderr as "agw: <message>" and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "agw: %s\n", ue.err)
		path := ue.cmdPath
		if path == "" {
			path = "agw"
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		return exitUsage
	}
	if errors.Is(err, admin.ErrDaemonNotRunning) {
		fmt.Fprintf(stderr, "agw: %s\n", err)
		return exitDaemonDown
	}
	var ce *exitCodeError
	if errors.As(err, &ce) {
		if ce.msg != "" {
			fmt.Fprintf(stderr, "agw: %s\n", ce.msg)
		}
		return ce.code
	}
	fmt.Fprintf(stderr, "agw: %s\n", err)
	return exitError
}
