// Command stockproxy is the load test's calibration point: the standard
// library's httputil.ReverseProxy, as a team would first write the
// gateway, doing nginx's job in the load test (TLS termination, the key
// injected as a header, HTTPS to the backend with HTTP/2 when offered) and
// nothing more: no identification, policy, audit or scrubbing.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	certFile := flag.String("cert", "", "server certificate chain (PEM)")
	keyFile := flag.String("key", "", "server private key (PEM)")
	upstream := flag.String("upstream", "", "backend URL, https://host:port")
	upstreamCA := flag.String("upstream-ca", "", "PEM roots for the backend")
	serverName := flag.String("upstream-name", "example.com", "name to verify on the backend certificate")
	flag.Parse()
	// The key comes from the environment, not argv, as agw's does.
	secret := os.Getenv("STOCKPROXY_KEY")

	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	pem, err := os.ReadFile(*upstreamCA)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatalf("%s holds no PEM certificate", *upstreamCA)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: *serverName}
	tr.MaxIdleConnsPerHost = 64
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.Out.Header.Del("Authorization")
			r.Out.Header.Set("X-Api-Key", secret)
		},
		Transport: tr,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready", ln.Addr().String())
	log.Fatal(http.ServeTLS(ln, rp, *certFile, *keyFile))
}
