// Command backend is the load test's upstream: a small HTTPS server that
// answers every request with a fixed JSON body, checking the credential the
// gateway (or nginx) injected. It writes its certificate to -cert-out so the
// proxies can trust it, and prints "ready" when it listens.
package main

import (
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
)

const body = `{"id":"cmpl-1","object":"chat.completion","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}`

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on")
	certOut := flag.String("cert-out", "", "write the server certificate (PEM) here")
	key := flag.String("want-key", "", "X-Api-Key value to require (empty: any)")
	h2 := flag.Bool("http2", true, "offer HTTP/2 (ALPN h2)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	n := strconv.Itoa(len(body))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *key != "" && r.Header.Get("X-Api-Key") != *key {
			http.Error(w, "bad key", http.StatusUnauthorized)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{n}
		_, _ = w.Write([]byte(body))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.EnableHTTP2 = *h2
	srv.StartTLS()
	if *certOut != "" {
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(*certOut, pemBytes, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("ready", ln.Addr().String())
	select {}
}
