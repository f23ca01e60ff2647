package crypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

const (
	caValidityYears = 10
	// clockSkew backdates NotBefore so that a client whose clock runs a
	// little behind still accepts a certificate minted a moment ago.
	clockSkew = 5 * time.Minute
)

// CA is agw's internal certificate authority: a self-signed ECDSA P-256
// root that agents trust and that signs a leaf for each intercepted host.
// It is safe for concurrent use.
type CA struct {
	// Cert is the parsed CA certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM form, what `agw ca export` prints.
	CertPEM []byte

	key *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA valid for ten years from now. It may sign
// leaves but no intermediate CAs (MaxPathLen 0).
func NewCA(commonName string, now time.Time) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, errors.New("new CA: common name is empty")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new CA: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"agw"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new CA: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA: parse certificate: %w", err)
	}
	return &CA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
	}, nil
}

// KeyPEM returns the CA private key as a PKCS#8 "PRIVATE KEY" PEM block.
// The caller must seal it before it touches disk.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("marshal CA key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	return out, nil
}

// LoadCA rebuilds a CA from its certificate and PKCS#8 (or SEC 1 "EC
// PRIVATE KEY") key. It fails if the certificate is not a CA allowed to
// sign certificates or if the key does not belong to it.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("load CA: certificate is not a PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load CA: parse certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("load CA: certificate is not a CA allowed to sign certificates")
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("load CA: private key does not match the certificate's public key")
	}
	return &CA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:     key,
	}, nil
}

// parseECKey never includes key bytes in its errors.
func parseECKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("key is not PEM")
	}
	switch kb.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, errors.New("key is not a valid PKCS#8 private key")
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is a %T, want an ECDSA key", k)
		}
		return ec, nil
	case "EC PRIVATE KEY":
		ec, err := x509.ParseECPrivateKey(kb.Bytes)
		if err != nil {
			return nil, errors.New("key is not a valid EC private key")
		}
		return ec, nil
	default:
		return nil, fmt.Errorf("key PEM block is %q, want PRIVATE KEY", kb.Type)
	}
}

// MintLeaf issues a server certificate for host, signed by the CA, with a
// fresh P-256 key. host is a DNS name, optionally a wildcard whose "*" is
// the whole leftmost label ("*.crm.example.com"); an empty host, an IP
// literal or an invalid name is refused. The certificate is valid from
// five minutes before now until now+validity, cut short at the CA's own
// expiry. The returned chain is [leaf, CA] with Leaf set.
func (ca *CA) MintLeaf(host string, now time.Time, validity time.Duration) (*tls.Certificate, error) {
	return ca.mintLeaf(host, now, validity, false)
}

// MintLeafRSA is MintLeaf with an RSA-2048 key, for clients that accept
// no ECDSA signature scheme.
func (ca *CA) MintLeafRSA(host string, now time.Time, validity time.Duration) (*tls.Certificate, error) {
	return ca.mintLeaf(host, now, validity, true)
}

func (ca *CA) mintLeaf(host string, now time.Time, validity time.Duration, useRSA bool) (*tls.Certificate, error) {
	name, err := normalizeHost(host)
	if err != nil {
		return nil, fmt.Errorf("mint leaf: %w", err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("mint leaf for %s: validity %v is not positive", name, validity)
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("mint leaf for %s: the CA expired at %s; create a new CA", name, ca.Cert.NotAfter.Format(time.RFC3339))
	}
	var key crypto.Signer
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("mint leaf for %s: generate key: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("mint leaf for %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("mint leaf for %s: sign: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mint leaf for %s: parse: %w", name, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// normalizeHost lower-cases host, drops one trailing dot, and checks that
// it is a DNS name a certificate may carry.
func normalizeHost(host string) (string, error) {
	if host == "" {
		return "", errors.New("host is empty")
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return "", fmt.Errorf("host %q is an IP address; only DNS names are intercepted", host)
	}
	if len(h) > 253 {
		return "", fmt.Errorf("host %q is longer than 253 characters", host)
	}
	labels := strings.Split(h, ".")
	for i, l := range labels {
		if l == "*" && i == 0 {
			// A wildcard must leave at least a registrable-looking name
			// under it: "*.example.com", never "*.com" or "*".
			if len(labels) < 3 {
				return "", fmt.Errorf("host %q: a wildcard needs at least two labels after it", host)
			}
			continue
		}
		if err := checkLabel(l); err != nil {
			return "", fmt.Errorf("host %q: %w", host, err)
		}
	}
	return h, nil
}

func checkLabel(l string) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return errors.New("label longer than 63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for _, c := range []byte(l) {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '*':
			return fmt.Errorf("label %q: a wildcard must be the whole leftmost label", l)
		default:
			return fmt.Errorf("label %q contains %q", l, c)
		}
	}
	return nil
}

// randomSerial returns a positive random 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID follows RFC 7093 section 2 method 1: the leftmost 160 bits
// of the SHA-256 of the subjectPublicKey bit string.
func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	ecdhPub, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("subject key id: %w", err)
	}
	sum := sha256.Sum256(ecdhPub.Bytes())
	return sum[:20], nil
}
