package crypto

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustCA(t testing.TB) *CA {
	t.Helper()
	ca, err := NewCA("agw test CA", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func verifyLeaf(ca *CA, leaf *x509.Certificate, name string, at time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:     name,
		Roots:       roots,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func TestNewCA(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if got := c.NotAfter.Sub(testNow); got < 10*365*24*time.Hour || got > 10*366*24*time.Hour {
		t.Errorf("validity %v, want ten years", got)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 || c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v is not a positive random 128-bit number", c.SerialNumber)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no SubjectKeyId")
	}
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("public key is %T, want ECDSA", c.PublicKey)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if other := mustCA(t); other.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two CAs share a serial number")
	}
	if _, err := NewCA(" ", testNow); err == nil {
		t.Error("NewCA accepted an empty common name")
	}
}

func TestMintLeafVerifies(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	tests := []struct {
		host   string
		verify string
		ok     bool
	}{
		{"api.openai.com", "api.openai.com", true},
		{"api.openai.com", "API.OpenAI.com", true},
		{"api.openai.com", "evil.openai.com", false},
		{"api.openai.com", "openai.com", false},
		{"api.openai.com", "api.openai.com.evil.net", false},
		{"API.OpenAI.com.", "api.openai.com", true},
		{"hr.corp.net", "hr.corp.net", true},
		{"*.crm.example.com", "eu.crm.example.com", true},
		{"*.crm.example.com", "us.crm.example.com", true},
		{"*.crm.example.com", "crm.example.com", false},
		{"*.crm.example.com", "a.b.crm.example.com", false},
		{"*.crm.example.com", "eu.crm.example.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.host+"→"+tt.verify, func(t *testing.T) {
			t.Parallel()
			cert, err := ca.MintLeaf(tt.host, testNow, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			err = verifyLeaf(ca, cert.Leaf, tt.verify, testNow.Add(time.Hour))
			if tt.ok && err != nil {
				t.Fatalf("verify %s: %v", tt.verify, err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("leaf for %s verified for %s", tt.host, tt.verify)
			}
		})
	}
}

func TestMintLeafShape(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	cert, err := ca.MintLeaf("api.openai.com", testNow, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], ca.Cert.Raw) || !bytes.Equal(cert.Certificate[0], leaf.Raw) {
		t.Fatal("chain is not [leaf, CA]")
	}
	if got := leaf.DNSNames; len(got) != 1 || got[0] != "api.openai.com" {
		t.Errorf("DNSNames = %v", got)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v", leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if !leaf.NotBefore.Equal(testNow.Add(-5*time.Minute)) || !leaf.NotAfter.Equal(testNow.Add(24*time.Hour)) {
		t.Errorf("validity %v – %v", leaf.NotBefore, leaf.NotAfter)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, ca.Cert.SubjectKeyId) {
		t.Error("leaf AuthorityKeyId does not match CA SubjectKeyId")
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("private key does not match the leaf")
	}
	if err := verifyLeaf(ca, leaf, "api.openai.com", testNow.Add(-time.Minute)); err != nil {
		t.Errorf("leaf not valid one minute before minting (clock skew): %v", err)
	}
	if err := verifyLeaf(ca, leaf, "api.openai.com", testNow.Add(25*time.Hour)); err == nil {
		t.Error("leaf still valid after its validity")
	}
	other, err := ca.MintLeaf("api.openai.com", testNow, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 || other.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		t.Error("two leaves share a serial or a key")
	}
	long, err := ca.MintLeaf("api.openai.com", testNow, 20*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if long.Leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Error("leaf outlives its CA")
	}
}

func TestMintLeafRefuses(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	tests := []struct {
		name     string
		host     string
		validity time.Duration
	}{
		{"empty", "", time.Hour},
		{"ipv4", "10.0.0.1", time.Hour},
		{"ipv6", "::1", time.Hour},
		{"bracketed ipv6", "[::1]", time.Hour},
		{"port", "api.openai.com:443", time.Hour},
		{"space", "api openai.com", time.Hour},
		{"empty label", "api..com", time.Hour},
		{"wildcard tld", "*.com", time.Hour},
		{"bare wildcard", "*", time.Hour},
		{"inner wildcard", "api.*.com", time.Hour},
		{"partial wildcard", "a*.example.com", time.Hour},
		{"hyphen edge", "-api.example.com", time.Hour},
		{"long label", strings.Repeat("a", 64) + ".com", time.Hour},
		{"zero validity", "api.openai.com", 0},
		{"negative validity", "api.openai.com", -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ca.MintLeaf(tt.host, testNow, tt.validity); err == nil {
				t.Fatalf("MintLeaf(%q, %v) succeeded", tt.host, tt.validity)
			}
		})
	}
	if _, err := ca.MintLeaf("api.openai.com", testNow.AddDate(11, 0, 0), time.Hour); err == nil {
		t.Error("MintLeaf succeeded after the CA expired")
	}
}

func TestLoadCA(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	other := mustCA(t)
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Fatalf("KeyPEM is not PKCS#8 PEM: %.30q", keyPEM)
	}
	otherKey, err := other.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.MintLeaf("api.openai.com", testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		loaded, err := LoadCA(ca.CertPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if !loaded.Cert.Equal(ca.Cert) || !bytes.Equal(loaded.CertPEM, ca.CertPEM) {
			t.Fatal("loaded certificate differs")
		}
		minted, err := loaded.MintLeaf("api.openai.com", testNow, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyLeaf(ca, minted.Leaf, "api.openai.com", testNow); err != nil {
			t.Fatalf("leaf from the loaded CA does not verify against the original: %v", err)
		}
	})

	tests := []struct {
		name    string
		certPEM []byte
		keyPEM  []byte
		want    string
	}{
		{"mismatched key", ca.CertPEM, otherKey, "does not match"},
		{"key as cert", keyPEM, keyPEM, "CERTIFICATE"},
		{"cert as key", ca.CertPEM, ca.CertPEM, "PRIVATE KEY"},
		{"garbage key", ca.CertPEM, []byte("nope"), "not PEM"},
		{"leaf as CA", pemCert(leaf.Certificate[0]), keyPEM, "not a CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadCA(tt.certPEM, tt.keyPEM)
			if err == nil {
				t.Fatal("LoadCA succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "BEGIN") {
				t.Fatalf("error %q echoes PEM input", err)
			}
		})
	}
}

func TestInitCAFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	k := mustKeyring(t)
	ca, err := InitCA(dir, k, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CACertFile, CAKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode %#o, want 0600", name, fi.Mode().Perm())
		}
	}
	rawKey, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rawKey, []byte("PRIVATE KEY")) {
		t.Fatal("ca.key.age holds the key in the clear")
	}

	loaded, err := LoadCAFiles(dir, k)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Fatal("loaded a different CA")
	}
	origKey, _ := ca.KeyPEM()
	loadedKey, _ := loaded.KeyPEM()
	if !bytes.Equal(origKey, loadedKey) {
		t.Fatal("loaded a different CA key")
	}

	if _, err := InitCA(dir, k, testNow); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second InitCA error = %v, want fs.ErrExist", err)
	}
	if again, err := LoadCAFiles(dir, k); err != nil || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("a refused InitCA replaced the CA: %v", err)
	}

	if _, err := LoadCAFiles(dir, mustKeyring(t)); !errors.Is(err, ErrOpen) {
		t.Fatalf("LoadCAFiles with another keyring: %v, want ErrOpen", err)
	}
	if _, err := LoadCAFiles(t.TempDir(), k); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadCAFiles on an empty dir: %v, want fs.ErrNotExist", err)
	}
}

func TestInitCARefusesPartialState(t *testing.T) {
	t.Parallel()
	for _, existing := range []string{CACertFile, CAKeyFile} {
		t.Run(existing, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, existing), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := InitCA(dir, mustKeyring(t), testNow); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("InitCA error = %v, want fs.ErrExist", err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("InitCA wrote files next to an existing %s", existing)
			}
		})
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func BenchmarkMintLeaf(b *testing.B) {
	ca := mustCA(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ca.MintLeaf("api.openai.com", testNow, 24*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
