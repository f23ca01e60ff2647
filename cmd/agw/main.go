// Command agw is the agw gateway's single binary: `agw serve` runs the daemon
// and every other command is a client of the daemon's admin API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Build information, set at link time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-01-02"
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// Exit codes scripts can rely on.
const (
	exitOK    = 0
	exitError = 1 // the daemon refused the request, is not running, or the command failed
	exitUsage = 2 // the command line was wrong; nothing was sent
)

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
