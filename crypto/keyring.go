package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"filippo.io/age"
)

// ErrOpen is wrapped by every error from Keyring.Open: the value was sealed
// to another identity, or it was truncated or altered.
var ErrOpen = errors.New("cannot open sealed value")

// maxIdentityFile bounds how much of an identity file LoadKeyring reads; a
// real one is under 200 bytes.
const maxIdentityFile = 64 << 10

// Keyring is the daemon's age X25519 identity. It seals secrets to itself
// before they touch disk and opens them again into memory.
type Keyring struct {
	id *age.X25519Identity
}

// NewKeyring returns a keyring with a fresh X25519 identity.
func NewKeyring() (*Keyring, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate age identity: %w", err)
	}
	return &Keyring{id: id}, nil
}

// LoadKeyring reads an age identity file holding exactly one X25519
// identity. It refuses a file that is readable or writable by group or
// others, because anyone who can read it can open every stored secret. A
// missing file yields an error wrapping fs.ErrNotExist.
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load age identity: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the check and the read concern
	// the same file.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load age identity: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load age identity: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load age identity: %s has mode %#o, so other users may read the key that protects every secret; run: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
	if err != nil {
		return nil, fmt.Errorf("load age identity: read %s: %w", path, err)
	}
	if len(data) > maxIdentityFile {
		return nil, fmt.Errorf("load age identity: %s is larger than %d bytes; it is not an age identity file", path, maxIdentityFile)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("load age identity: %s: %w", path, err)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("load age identity: %s holds %d identities, want exactly one", path, len(ids))
	}
	id, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("load age identity: %s holds a %T, want an X25519 identity (AGE-SECRET-KEY-1...)", path, ids[0])
	}
	return &Keyring{id: id}, nil
}

// Save writes the identity to a new file at path with mode 0600, in the
// format age-keygen uses, so the age CLI can open sealed values in an
// emergency. It never overwrites: if path exists the error wraps
// fs.ErrExist.
func (k *Keyring) Save(path string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# created: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# public key: %s\n", k.id.Recipient())
	fmt.Fprintf(&b, "%s\n", k.id)
	err := writeFileExcl(path, b.Bytes(), 0o600)
	clear(b.Bytes())
	if err != nil {
		return fmt.Errorf("save age identity: %w", err)
	}
	return nil
}

// Recipient returns the public key ("age1...") that values are sealed to.
func (k *Keyring) Recipient() string { return k.id.Recipient().String() }

// String describes the keyring by its public key, never its identity.
func (k *Keyring) String() string { return "age keyring " + k.Recipient() }

// Seal encrypts plaintext to the keyring's own recipient, in age's binary
// (not armored) format.
func (k *Keyring) Seal(plaintext []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, k.id.Recipient())
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return buf.Bytes(), nil
}

// Open decrypts a value made by Seal. Every failure, including a value
// sealed to another identity or one that was truncated or altered, wraps
// ErrOpen.
func (k *Keyring) Open(sealed []byte) (Secret, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), k.id)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	// age authenticates each chunk as it is read and the last one at EOF,
	// so a successful ReadAll means the whole value is authentic.
	plain, err := io.ReadAll(r)
	if err != nil {
		clear(plain)
		return Secret{}, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	s := NewSecret(plain)
	clear(plain)
	return s, nil
}
