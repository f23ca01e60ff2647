// Command goclient is an ordinary Go net/http client for the transparent e2e
// tests: run inside the test's network namespace with GODEBUG=netdns=go and
// SSL_CERT_FILE naming the gateway CA, it resolves names with the pure-Go
// resolver and calls the OpenAI chat completions API at its usual address,
// knowing nothing of the gateway. The key it sends is $AGW_TOKEN.
//
// It prints one JSON object per line: "resolve" and "rcode" events for the
// names given with -resolve, then a "response" event, or for -stream one
// "chunk" event per server-sent event as it arrives and a closing "done".
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

type event struct {
	Event  string   `json:"event"`
	Name   string   `json:"name,omitempty"`
	Addrs  []string `json:"addrs,omitempty"`
	Err    string   `json:"err,omitempty"`
	Type   string   `json:"type,omitempty"`
	Server string   `json:"server,omitempty"`
	Rcode  string   `json:"rcode,omitempty"`
	Status int      `json:"status,omitempty"`
	Proto  string   `json:"proto,omitempty"`
	Remote string   `json:"remote,omitempty"`
	Body   string   `json:"body,omitempty"`
	Index  int      `json:"i"`
	Time   int64    `json:"t"` // Unix milliseconds, as JavaScript's Date.now()
	Data   string   `json:"data,omitempty"`
}

func emit(ev event) {
	ev.Time = time.Now().UnixMilli()
	b, _ := json.Marshal(ev)
	fmt.Println(string(b))
}

func main() {
	url := flag.String("url", "https://api.openai.com/v1/chat/completions", "`URL` to POST to")
	resolve := flag.String("resolve", "", "comma-separated `NAMES` to resolve first")
	stream := flag.String("stream", "", "ask for a stream, naming it `NAME` in the request's user field")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	for _, name := range strings.Split(*resolve, ",") {
		if name != "" {
			lookup(ctx, name)
		}
	}
	if *url == "" {
		return
	}
	if err := call(ctx, *url, *stream); err != nil {
		emit(event{Event: "error", Err: err.Error()})
		os.Exit(1)
	}
}

// lookup resolves name twice: as net/http will (the pure-Go resolver), and
// with one raw A query to the first server of /etc/resolv.conf, to see the
// response code the resolver turned into an error.
func lookup(ctx context.Context, name string) {
	r := &net.Resolver{PreferGo: true}
	addrs, err := r.LookupHost(ctx, name)
	ev := event{Event: "resolve", Name: name, Addrs: addrs}
	if err != nil {
		ev.Err = err.Error()
	}
	emit(ev)

	conf, err := mdns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(conf.Servers) == 0 {
		emit(event{Event: "rcode", Name: name, Err: fmt.Sprintf("read /etc/resolv.conf: %v", err)})
		return
	}
	server := net.JoinHostPort(conf.Servers[0], conf.Port)
	for _, qt := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), qt)
		c := &mdns.Client{Timeout: 5 * time.Second}
		in, _, err := c.ExchangeContext(ctx, m, server)
		ev := event{Event: "rcode", Name: name, Type: mdns.TypeToString[qt], Server: server}
		if err != nil {
			ev.Err = err.Error()
		} else {
			ev.Rcode = mdns.RcodeToString[in.Rcode]
			for _, rr := range in.Answer {
				switch rr := rr.(type) {
				case *mdns.A:
					ev.Addrs = append(ev.Addrs, rr.A.String())
				case *mdns.AAAA:
					ev.Addrs = append(ev.Addrs, rr.AAAA.String())
				}
			}
		}
		emit(ev)
	}
}

func call(ctx context.Context, url, stream string) error {
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`
	if stream != "" {
		body = fmt.Sprintf(`{"model":"gpt-4o-mini","stream":true,"user":%q,"messages":[{"role":"user","content":"Say hello"}]}`, stream)
	}
	var remote string
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { remote = ci.Conn.RemoteAddr().String() },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("AGW_TOKEN"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if stream == "" || resp.StatusCode != http.StatusOK {
		b, err := io.ReadAll(resp.Body)
		emit(event{Event: "response", Status: resp.StatusCode, Proto: resp.Proto, Remote: remote, Body: string(b)})
		return err
	}
	emit(event{Event: "response", Status: resp.StatusCode, Proto: resp.Proto, Remote: remote})
	sc := bufio.NewScanner(resp.Body)
	i := 0
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			emit(event{Event: "done", Index: i})
			return nil
		}
		emit(event{Event: "chunk", Index: i, Data: data})
		i++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("stream ended after %d chunks without [DONE]", i)
}
