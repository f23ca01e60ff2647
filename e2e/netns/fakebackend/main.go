// Command fakebackend stands in for api.openai.com in the transparent e2e
// tests: an HTTPS server with its own certificate that answers
// POST /v1/chat/completions like OpenAI does, plain or as server-sent events,
// and records every request it receives so the test can check which
// credential reached it.
//
// It prints "ready" on stdout once it listens. It refuses (401) a request
// whose Authorization is not "Bearer " + $FAKE_BACKEND_KEY.
//
// Streams can be held in lock step with the client: when the request's
// "user" field names a stream and -step-dir is set, chunk i (i >= 1) is sent
// only once the file <step-dir>/<user>.<i> exists. The test creates that file
// after it has seen chunk i-1 arrive at the client, which proves the chunks
// travel one by one through the gateway rather than in one buffered lump.
package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Record is one request as received, written as a JSON line to -log.
type Record struct {
	Method    string              `json:"method"`
	Path      string              `json:"path"`
	RawQuery  string              `json:"raw_query"`
	Host      string              `json:"host"`
	Proto     string              `json:"proto"`
	Header    map[string][]string `json:"header"`
	BasicUser string              `json:"basic_user,omitempty"`
	BasicPass string              `json:"basic_pass,omitempty"`
	Body      string              `json:"body"`
}

// streamChunks are the content pieces of a streamed answer; a last chunk
// with finish_reason "stop" follows them.
var streamChunks = []string{"Hello", " from", " the", " backend"}

// stepTimeout bounds the wait for a step file, so that a test that died
// never leaves the backend holding a stream forever.
const stepTimeout = 60 * time.Second

var validStreamName = regexp.MustCompile(`^[a-z0-9-]{1,40}$`)

type server struct {
	key     string
	stepDir string

	mu  sync.Mutex
	log *os.File
}

func main() {
	listen := flag.String("listen", "127.0.0.2:443", "`ADDR` to serve HTTPS on")
	certFile := flag.String("cert", "", "PEM certificate `FILE`")
	keyFile := flag.String("key", "", "PEM private key `FILE`")
	logFile := flag.String("log", "", "JSON lines `FILE` recording every request")
	stepDir := flag.String("step-dir", "", "`DIR` of step files that release stream chunks")
	flag.Parse()

	key := os.Getenv("FAKE_BACKEND_KEY")
	if key == "" || *certFile == "" || *keyFile == "" || *logFile == "" {
		log.Fatal("fakebackend: -cert, -key, -log and $FAKE_BACKEND_KEY are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("fakebackend: %v", err)
	}
	lf, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		log.Fatalf("fakebackend: %v", err)
	}
	s := &server{key: key, stepDir: *stepDir, log: lf}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("fakebackend: %v", err)
	}
	srv := &http.Server{
		Handler:   s,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:  log.New(os.Stderr, "fakebackend: ", 0),
	}
	fmt.Println("ready", ln.Addr())
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("fakebackend: %v", err)
	}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := Record{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
		Proto: r.Proto, Header: r.Header, Body: string(body),
	}
	rec.BasicUser, rec.BasicPass, _ = r.BasicAuth()
	if err := s.record(rec); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}

	if r.Header.Get("Authorization") != "Bearer "+s.key {
		openAIError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided.")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		openAIError(w, http.StatusNotFound, "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path)
		return
	}
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
		User   string `json:"user"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "The request body must be JSON with a model.")
		return
	}
	if req.Stream {
		s.stream(w, r, req.Model, req.User)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id":      "chatcmpl-fake0001",
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": "Hello from the backend", "refusal": nil},
			"logprobs":      nil,
			"finish_reason": "stop",
		}},
		"usage": map[string]any{"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
	})
}

// stream answers with chat.completion.chunk events, flushing each one.
func (s *server) stream(w http.ResponseWriter, r *http.Request, model, name string) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	created := time.Now().Unix()
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{
			"id": "chatcmpl-fake0002", "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
	}
	events := []map[string]any{chunk(map[string]any{"role": "assistant", "content": streamChunks[0]}, nil)}
	for _, c := range streamChunks[1:] {
		events = append(events, chunk(map[string]any{"content": c}, nil))
	}
	events = append(events, chunk(map[string]any{}, "stop"))

	for i, ev := range events {
		if i > 0 && !s.waitStep(r, name, i) {
			return
		}
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

// waitStep holds chunk i of the named stream until its step file exists. It
// returns false when the client went away or the wait timed out.
func (s *server) waitStep(r *http.Request, name string, i int) bool {
	if s.stepDir == "" || !validStreamName.MatchString(name) {
		return true
	}
	path := filepath.Join(s.stepDir, fmt.Sprintf("%s.%d", name, i))
	deadline := time.Now().Add(stepTimeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		if time.Now().After(deadline) {
			log.Printf("fakebackend: stream %s: no step file %s after %v", name, path, stepTimeout)
			return false
		}
		select {
		case <-r.Context().Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *server) record(rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.log.Write(append(b, '\n'))
	return err
}

func openAIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": code},
	})
}
