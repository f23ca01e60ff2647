package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/crypto"
)

// caExport is `agw ca export -o json`.
type caExport struct {
	// PEM is the certificate agents must trust, as `agw ca export` prints it.
	PEM               string    `json:"pem"`
	Subject           string    `json:"subject"`
	NotAfter          time.Time `json:"not_after"`
	SHA256Fingerprint string    `json:"sha256_fingerprint"`
	// Source is "daemon" or the certificate file read while no daemon ran.
	Source string `json:"source"`
}

func (a *app) newCACmd() *cobra.Command {
	return newGroupCmd("ca", "The internal CA agents must trust",
		&cobra.Command{
			Use:   "export",
			Short: "Print the CA certificate (PEM) to install where agents run",
			Long: `Print the internal CA's certificate, which agents must trust. It comes from the
running daemon, or, when none runs, from ca.crt in the data directory (after
'agw init', before the daemon first starts). Only the public certificate is
printed; the CA's key never leaves the daemon.`,
			Example: `  agw ca export > agw-ca.pem
  # then: NODE_EXTRA_CA_CERTS=agw-ca.pem, SSL_CERT_FILE, or the system trust store`,
			Args: exactArgs(),
			RunE: func(cmd *cobra.Command, _ []string) error {
				source := "daemon"
				pemText, err := a.client().CA(cmd.Context())
				if errors.Is(err, admin.ErrDaemonNotRunning) {
					path := filepath.Join(a.dataDirPath(), crypto.CACertFile)
					b, ferr := os.ReadFile(path)
					if ferr != nil {
						if errors.Is(ferr, os.ErrNotExist) {
							return fmt.Errorf("%w; and %s does not exist: run `agw init` (or `agw serve`) to create the CA, or give the data directory with --data-dir", a.explainDaemonDown(err), path)
						}
						return fmt.Errorf("%w; and reading %s failed: %v", a.explainDaemonDown(err), path, ferr)
					}
					pemText, source, err = string(b), path, nil
				}
				if err != nil {
					return err
				}
				out, err := describeCA(pemText, source)
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				if source != "daemon" {
					fmt.Fprintf(cmd.ErrOrStderr(), "agw: no daemon is running; printed the CA certificate from %s\n", source)
				}
				_, err = fmt.Fprint(cmd.OutOrStdout(), out.PEM)
				return err
			},
		},
	)
}

// describeCA checks that pemText holds a CA certificate and describes it.
func describeCA(pemText, source string) (caExport, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE" {
		return caExport{}, fmt.Errorf("the CA certificate from %s is not a PEM certificate", source)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA {
		return caExport{}, fmt.Errorf("the CA certificate from %s is not a CA certificate", source)
	}
	sum := sha256.Sum256(cert.Raw)
	if !strings.HasSuffix(pemText, "\n") {
		pemText += "\n"
	}
	return caExport{
		PEM:               pemText,
		Subject:           cert.Subject.String(),
		NotAfter:          cert.NotAfter.UTC(),
		SHA256Fingerprint: strings.ToUpper(hex.EncodeToString(sum[:])),
		Source:            source,
	}, nil
}
