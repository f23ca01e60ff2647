// Command mintleaf issues a leaf certificate from an agw data directory's
// CA, so the load test can give nginx a certificate from the same CA agw
// uses and the clients trust one root. It is a benchmark aid only: it reads
// the daemon's identity, which nothing else outside the daemon may do.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/agw-dev/agw/crypto"
)

func main() {
	dir := flag.String("data-dir", "", "agw data directory")
	host := flag.String("host", "", "host name of the leaf")
	certOut := flag.String("cert", "leaf.pem", "certificate chain output")
	keyOut := flag.String("key", "leaf.key", "private key output")
	flag.Parse()

	keys, err := crypto.LoadKeyring(filepath.Join(*dir, "identity.txt"))
	if err != nil {
		log.Fatal(err)
	}
	ca, err := crypto.LoadCAFiles(*dir, keys)
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := ca.MintLeaf(*host, time.Now(), 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*certOut, chain, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*keyOut, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		log.Fatal(err)
	}
}
