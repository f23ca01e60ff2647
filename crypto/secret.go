package crypto

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// redacted is what every printing or encoding path of a Secret produces.
const redacted = "[redacted]"

// ErrSecretDecode is returned when something tries to decode a Secret from
// JSON or text: secrets enter agw only through explicit constructors, never
// as a side effect of decoding an API payload.
var ErrSecretDecode = errors.New("a secret cannot be decoded from JSON or text; pass it through the dedicated secret input")

// Secret holds bytes that must never be printed, logged or encoded. The only
// way to get them back is Reveal. The zero value is an empty secret.
//
// The bytes sit behind a *string: for a struct holding a Secret in an
// unexported field, fmt cannot call String or Format and falls back to
// reflection, which prints a pointer to a string as a bare address (a
// pointer to a struct or slice would be dereferenced and printed).
type Secret struct {
	p *string
}

// Compile-time checks that every printing and encoding path is covered.
var (
	_ fmt.Stringer   = Secret{}
	_ fmt.GoStringer = Secret{}
	_ fmt.Formatter  = Secret{}
	_ slog.LogValuer = Secret{}
	_ interface {
		MarshalJSON() ([]byte, error)
		MarshalText() ([]byte, error)
	} = Secret{}
	_ interface {
		UnmarshalJSON([]byte) error
		UnmarshalText([]byte) error
	} = (*Secret)(nil)
)

// NewSecret returns a Secret holding a copy of b; later changes to b do not
// affect it.
func NewSecret(b []byte) Secret {
	if len(b) == 0 {
		return Secret{}
	}
	v := string(b)
	return Secret{p: &v}
}

// Reveal returns a fresh copy of the secret bytes (nil for an empty secret).
// It is the only way out and is meant for the moment a credential is
// injected; a copy, so that a caller cannot alter the secret for every
// other holder.
func (s Secret) Reveal() []byte {
	if s.p == nil {
		return nil
	}
	return []byte(*s.p)
}

// Len returns the length of the secret in bytes.
func (s Secret) Len() int {
	if s.p == nil {
		return 0
	}
	return len(*s.p)
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Len() == 0 }

// Equal reports whether s and o hold the same bytes, in time that depends
// only on their lengths.
func (s Secret) Equal(o Secret) bool {
	a, b := s.value(), o.value()
	if len(a) != len(b) {
		return false
	}
	var diff byte
	for i := 0; i < len(a); i++ {
		diff |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(diff, 0) == 1
}

func (s Secret) value() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not show the bytes either.
func (s Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb and flag, including %x, %d and %q
// which would otherwise bypass String.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue makes slog record "[redacted]" with any handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the secret as the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes the secret as "[redacted]" (used for map keys and by
// text-based encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalJSON always fails with ErrSecretDecode.
func (s *Secret) UnmarshalJSON([]byte) error { return ErrSecretDecode }

// UnmarshalText always fails with ErrSecretDecode.
func (s *Secret) UnmarshalText([]byte) error { return ErrSecretDecode }
