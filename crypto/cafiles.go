package crypto

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// File names of the CA inside the data directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key.age"
)

// caCommonName names the CA in trust stores; the host name tells one
// installation's CA from another's when several are trusted.
func caCommonName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return "agw internal CA (" + h + ")"
	}
	return "agw internal CA"
}

// InitCA creates a new CA and writes dir/ca.crt and dir/ca.key.age (the key
// sealed with k), both mode 0600, creating dir (0700) if needed. It refuses
// to run if either file exists, with an error wrapping fs.ErrExist, so an
// existing CA that agents already trust is never replaced by accident.
func InitCA(dir string, k *Keyring, now time.Time) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("init CA: %s already exists; remove both CA files to start over (agents will need the new CA): %w", p, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("init CA: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	ca, err := NewCA(caCommonName(), now)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	sealed, err := k.Seal(keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	// Key first: a certificate on disk without its key would be a CA that
	// looks usable but is not.
	if err := writeFileExcl(keyPath, sealed, 0o600); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if err := writeFileExcl(certPath, ca.CertPEM, 0o600); err != nil {
		_ = os.Remove(keyPath)
		return nil, fmt.Errorf("init CA: %w", err)
	}
	return ca, nil
}

// LoadCAFiles reads the CA written by InitCA from dir, opening its key with
// k. A key sealed to another identity yields an error wrapping ErrOpen; a
// missing file one wrapping fs.ErrNotExist.
func LoadCAFiles(dir string, k *Keyring) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	sealed, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	key, err := k.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("load CA: %s was not sealed with this identity (%s) or is damaged: %w", keyPath, k.Recipient(), err)
	}
	keyPEM := key.Reveal()
	ca, err := LoadCA(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certPath, keyPath, err)
	}
	return ca, nil
}
