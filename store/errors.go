package store

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every layer. Store implementations return them
// (wrapped with detail); the admin API maps them to HTTP statuses and the admin
// client maps the statuses back, so callers match with errors.Is end to end.
var (
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: an object with that name (or that host) already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid: the input failed validation; the message names the field.
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the write is valid but the current state forbids it
	// (for example removing an IdP that agents still use).
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the caller is not allowed to perform the operation.
	ErrForbidden = errors.New("forbidden")
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("data directory in use")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrAuditTampered: the audit hash chain does not verify; the message
	// names the first bad sequence number.
	ErrAuditTampered = errors.New("audit trail tampered")
	// ErrCompacted: Watch was asked for history the store no longer holds;
	// Load a fresh snapshot and watch from its revision.
	ErrCompacted = errors.New("change history compacted")
)

// FieldError is a validation failure for one named field. It matches
// ErrInvalid with errors.Is.
type FieldError struct {
	Field  string // the flag or JSON field, e.g. "host"
	Value  string // the offending value (never a secret)
	Reason string // what is wrong and what to do
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, value, reason string) error {
	return &FieldError{Field: field, Value: value, Reason: reason}
}
