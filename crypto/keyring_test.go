package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKeyring(t testing.TB) *Keyring {
	t.Helper()
	k, err := NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	k := mustKeyring(t)
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"api key", []byte(canary)},
		{"empty", nil},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe}},
		{"larger than one age chunk", bytes.Repeat([]byte("x"), 64<<10+17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sealed, err := k.Seal(tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.plaintext) > 0 && bytes.Contains(sealed, tt.plaintext) {
				t.Fatal("sealed bytes contain the plaintext")
			}
			if bytes.HasPrefix(sealed, []byte("-----BEGIN")) {
				t.Fatal("sealed value is armored, want binary")
			}
			got, err := k.Open(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Reveal(), tt.plaintext) {
				t.Fatalf("Open returned %d bytes, want the %d sealed", got.Len(), len(tt.plaintext))
			}
		})
	}
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	k := mustKeyring(t)
	other := mustKeyring(t)
	sealed, err := k.Seal([]byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		keys   *Keyring
		sealed []byte
	}{
		{"other keyring", other, sealed},
		{"last byte flipped", k, flip(len(sealed) - 1)},
		{"payload byte flipped", k, flip(len(sealed) - 20)},
		{"header byte flipped", k, flip(30)},
		{"truncated", k, sealed[:len(sealed)-1]},
		{"empty", k, nil},
		{"not age", k, []byte("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := tt.keys.Open(tt.sealed)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open error = %v, want ErrOpen", err)
			}
			if !s.IsZero() {
				t.Fatal("Open returned data along with an error")
			}
		})
	}
}

func TestKeyringSaveLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.age")
	k := mustKeyring(t)
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("identity file mode = %#o, want 0600", got)
	}

	before, _ := os.ReadFile(path)
	if err := mustKeyring(t).Save(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Save error = %v, want fs.ErrExist", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed Save changed the existing identity file")
	}

	loaded, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Recipient() != k.Recipient() {
		t.Fatalf("loaded recipient %s, want %s", loaded.Recipient(), k.Recipient())
	}
	sealed, err := k.Seal([]byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := loaded.Open(sealed); err != nil || string(s.Reveal()) != canary {
		t.Fatalf("loaded keyring cannot open what the original sealed: %v", err)
	}
}

func TestLoadKeyringRefuses(t *testing.T) {
	t.Parallel()
	k := mustKeyring(t)
	var valid bytes.Buffer
	{
		p := filepath.Join(t.TempDir(), "id")
		if err := k.Save(p); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		valid.Write(b)
	}
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		missing bool
		wantIn  []string
		wantIs  error
	}{
		{name: "world readable", content: valid.Bytes(), mode: 0o644, wantIn: []string{"chmod 600", "0644"}},
		{name: "group readable", content: valid.Bytes(), mode: 0o640, wantIn: []string{"chmod 600"}},
		{name: "missing", missing: true, wantIs: fs.ErrNotExist},
		{name: "empty", content: nil, mode: 0o600, wantIn: []string{"no identities"}},
		{name: "garbage", content: []byte("AGE-SECRET-KEY-1NOTVALID\n"), mode: 0o600, wantIn: []string{"malformed"}},
		{name: "public key only", content: []byte(k.Recipient() + "\n"), mode: 0o600},
		{name: "two identities", content: append(bytes.Clone(valid.Bytes()), valid.Bytes()...), mode: 0o600, wantIn: []string{"exactly one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "identity.age")
			if !tt.missing {
				if err := os.WriteFile(path, tt.content, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadKeyring(path)
			if err == nil {
				t.Fatal("LoadKeyring succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("error = %v, want it to wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, want := range tt.wantIn {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY-1") {
				t.Errorf("error %q echoes key material", err)
			}
		})
	}
}

func TestKeyringDoesNotPrintIdentity(t *testing.T) {
	t.Parallel()
	k := mustKeyring(t)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{k, *k} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, "AGE-SECRET-KEY") {
				t.Fatalf("Sprintf(%s, keyring) prints the identity: %s", verb, out)
			}
		}
	}
}
