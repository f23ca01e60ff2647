package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestTransparentCurl: curl, given only agw's CA and the gateway token,
// makes a plain call and a streamed one to api.openai.com, and is refused a
// request its grant does not cover, which never reaches the backend.
func TestTransparentCurl(t *testing.T) {
	_, err := exec.LookPath("curl")
	requireEnv(t, err == nil, "the transparent curl test needs curl")
	t.Parallel()
	x := newTransparent(t)
	trustDir := filepath.Dir(x.caFile)
	curl := func(args ...string) (string, error) {
		return x.run(nil, "curl", append([]string{"-sS", "--cacert", x.caFile, "--capath", trustDir,
			"-H", "Authorization: Bearer " + x.token}, args...)...)
	}
	url := "https://" + openAIHost + "/v1/chat/completions"

	out, err := curl(url, "-H", "Content-Type: application/json",
		"-d", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`,
		"-w", "\n%{http_code} %{remote_ip}")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	out = strings.TrimSpace(out)
	nl := strings.LastIndexByte(out, '\n')
	body, status := out[:max(nl, 0)], out[nl+1:]
	if status != "200 "+nsGatewayIP {
		t.Errorf("curl: status and peer %q; want 200 from agw at %s\n%s", status, nsGatewayIP, body)
	}
	var completion struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &completion); err != nil || completion.Object != "chat.completion" ||
		len(completion.Choices) != 1 || completion.Choices[0].Message.Content != "Hello from the backend" {
		t.Errorf("curl: body is not the backend's chat.completion (%v):\n%s", err, body)
	}

	streamed, _ := x.lockstep("curl-stream", sseIndex(), nil, "curl", "-sS", "-N", "--cacert", x.caFile, "--capath", trustDir,
		"-H", "Authorization: Bearer "+x.token, "-H", "Content-Type: application/json", url,
		"-d", `{"model":"gpt-4o-mini","stream":true,"user":"curl-stream","messages":[{"role":"user","content":"Say hello"}]}`)
	if got := sseContent(t, streamed); got != strings.Join(streamContent, "") {
		t.Errorf("curl stream spelled %q; want %q", got, strings.Join(streamContent, ""))
	}
	if !strings.Contains(streamed, "data: [DONE]") {
		t.Errorf("curl stream did not end with data: [DONE]:\n%s", streamed)
	}

	// Outside the grant: agw answers itself, as policy, and forwards nothing.
	denied, err := curl("https://"+openAIHost+"/v1/models", "-w", "\n%{http_code}")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(denied), "\n403") || !strings.Contains(denied, "agw_forbidden") {
		t.Errorf("GET /v1/models outside the grant: %v\n%s\nwant 403 agw_forbidden", err, denied)
	}

	x.assertBackendSaw(2)
	x.assertClean(out, streamed, denied)
}

// sseIndex numbers the data lines of a raw server-sent event stream.
func sseIndex() func(string) (int, bool) {
	n := 0
	return func(line string) (int, bool) {
		if !strings.HasPrefix(line, "data: {") {
			return 0, false
		}
		n++
		return n - 1, true
	}
}

// sseContent joins the delta contents of a raw chat.completion.chunk stream.
func sseContent(t *testing.T, stream string) string {
	var s strings.Builder
	for _, line := range strings.Split(stream, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil || c.Object != "chat.completion.chunk" || len(c.Choices) != 1 {
			t.Errorf("stream event is not a chat.completion.chunk (%v): %s", err, data)
			continue
		}
		s.WriteString(c.Choices[0].Delta.Content)
	}
	return s.String()
}

// TestTransparentOpenAISDK: the official openai npm package, unmodified,
// with the gateway token as its apiKey and its default base URL, makes one
// ordinary call and one streaming call whose chunks arrive one by one.
func TestTransparentOpenAISDK(t *testing.T) {
	_, err := exec.LookPath("node")
	requireEnv(t, err == nil, "the transparent SDK test needs node")
	if err := installOpenAISDK(); err != nil {
		requireEnv(t, false, err.Error())
	}
	t.Parallel()
	x := newTransparent(t)
	script, err := filepath.Abs(filepath.Join("netns", "openai-sdk.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	out, released := x.lockstep("sdk-stream", func(line string) (int, bool) {
		var ev struct {
			Event string `json:"event"`
			I     int    `json:"i"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Event != "chunk" {
			return 0, false
		}
		return ev.I, true
	}, []string{"AGW_TOKEN=" + x.token, "AGW_STREAM_NAME=sdk-stream", "NODE_EXTRA_CA_CERTS=" + x.caFile}, "node", script)

	var content strings.Builder
	var completion string
	var times []int64
	done := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Event      string `json:"event"`
			T          int64  `json:"t"`
			Completion struct {
				Object  string `json:"object"`
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
			} `json:"completion"`
			Chunk struct {
				Object  string `json:"object"`
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			} `json:"chunk"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("SDK script printed %q: %v", line, err)
		}
		switch ev.Event {
		case "completion":
			if ev.Completion.Object == "chat.completion" && len(ev.Completion.Choices) == 1 {
				completion = ev.Completion.Choices[0].Message.Content
			}
		case "chunk":
			if ev.Chunk.Object != "chat.completion.chunk" || len(ev.Chunk.Choices) != 1 {
				t.Errorf("SDK yielded a chunk that is not a chat.completion.chunk: %s", line)
				continue
			}
			content.WriteString(ev.Chunk.Choices[0].Delta.Content)
			times = append(times, ev.T)
		case "done":
			done = true
		case "error":
			t.Errorf("SDK call failed: %s", redactKey(line, x.key))
		}
	}
	if completion != "Hello from the backend" {
		t.Errorf("SDK chat.completions.create returned %q; want the backend's answer\n%s", completion, out)
	}
	if content.String() != strings.Join(streamContent, "") || len(times) != len(streamContent) || !done {
		t.Errorf("SDK stream: %d chunks spelling %q, done %v; want %d spelling %q", len(times), content.String(), done,
			len(streamContent), strings.Join(streamContent, ""))
	}
	t.Logf("SDK chunk arrival times (ms): %v", times)
	assertHeldBack(t, times, released)

	x.assertBackendSaw(2)
	x.assertClean(out)
}

// installOpenAISDK runs `npm ci` in e2e/ once when the pinned SDK is not
// installed (.ci/run installs it beforehand).
var installOpenAISDK = sync.OnceValue(func() error {
	if _, err := os.Stat(filepath.Join("node_modules", "openai", "package.json")); err == nil {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("the openai SDK is not installed in e2e/node_modules and there is no npm to run npm ci")
	}
	out, err := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error").CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in e2e/ failed (the openai SDK is needed): %v\n%s", err, out)
	}
	return nil
})

// goClientEvent is a line of netns/goclient's output.
type goClientEvent struct {
	Event  string   `json:"event"`
	Name   string   `json:"name"`
	Addrs  []string `json:"addrs"`
	Err    string   `json:"err"`
	Type   string   `json:"type"`
	Server string   `json:"server"`
	Rcode  string   `json:"rcode"`
	Status int      `json:"status"`
	Proto  string   `json:"proto"`
	Remote string   `json:"remote"`
	Body   string   `json:"body"`
	Index  int      `json:"i"`
	T      int64    `json:"t"`
	Data   string   `json:"data"`
}

// TestTransparentGoClient: a Go net/http client with the pure-Go resolver
// finds api.openai.com at agw and nothing for a name agw does not own, then
// makes a plain call and a streamed one.
func TestTransparentGoClient(t *testing.T) {
	t.Parallel()
	x := newTransparent(t)
	goclient := filepath.Join(filepath.Dir(agwBin), "goclient")
	env := []string{"GODEBUG=netdns=go", "SSL_CERT_FILE=" + x.caFile, "SSL_CERT_DIR=" + filepath.Dir(x.caFile), "AGW_TOKEN=" + x.token}
	out, err := x.run(env, goclient, "-resolve", openAIHost+","+unregistered)
	if err != nil {
		t.Fatalf("goclient: %v\n%s", err, out)
	}
	t.Logf("goclient output:\n%s", out)
	events := parseGoClient(t, out)
	for _, ev := range events {
		switch {
		case ev.Event == "resolve" && ev.Name == openAIHost:
			if ev.Err != "" || strings.Join(ev.Addrs, ",") != nsGatewayIP {
				t.Errorf("the Go resolver gave %v (%s) for %s; want only agw's %s", ev.Addrs, ev.Err, openAIHost, nsGatewayIP)
			}
		case ev.Event == "rcode" && ev.Name == openAIHost:
			want := map[string]string{"A": nsGatewayIP, "AAAA": ""}[ev.Type]
			if ev.Server != nsDNSAddr || ev.Rcode != "NOERROR" || strings.Join(ev.Addrs, ",") != want {
				t.Errorf("%s %s from %s: %s %v (%s); want NOERROR with [%s] from %s", ev.Type, openAIHost, ev.Server,
					ev.Rcode, ev.Addrs, ev.Err, want, nsDNSAddr)
			}
		case ev.Event == "resolve" && ev.Name == unregistered:
			if len(ev.Addrs) != 0 || ev.Err == "" {
				t.Errorf("the Go resolver gave %v for %s, which agw does not own and cannot forward; want an error", ev.Addrs, unregistered)
			}
		case ev.Event == "rcode" && ev.Name == unregistered:
			if ev.Rcode != "SERVFAIL" || len(ev.Addrs) != 0 {
				t.Errorf("%s %s: %s %v (%s); want SERVFAIL with no answer (its upstream is unreachable)", ev.Type, unregistered,
					ev.Rcode, ev.Addrs, ev.Err)
			}
		case ev.Event == "response":
			if ev.Status != 200 || ev.Remote != net.JoinHostPort(nsGatewayIP, "443") {
				t.Errorf("goclient: status %d from %s; want 200 from agw at %s:443\n%s", ev.Status, ev.Remote, nsGatewayIP, ev.Body)
			}
			var c struct {
				Object  string `json:"object"`
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
			}
			if err := json.Unmarshal([]byte(ev.Body), &c); err != nil || c.Object != "chat.completion" ||
				len(c.Choices) != 1 || c.Choices[0].Message.Content != "Hello from the backend" {
				t.Errorf("goclient: body is not the backend's chat.completion (%v):\n%s", err, ev.Body)
			}
		case ev.Event == "error":
			t.Errorf("goclient: %s", ev.Err)
		}
	}
	if n := countEvents(events, "rcode"); n != 4 {
		t.Errorf("goclient made %d raw DNS probes; want 4", n)
	}
	if countEvents(events, "response") != 1 {
		t.Errorf("goclient printed no response:\n%s", out)
	}

	streamed, released := x.lockstep("go-stream", func(line string) (int, bool) {
		var ev goClientEvent
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Event != "chunk" {
			return 0, false
		}
		return ev.Index, true
	}, env, goclient, "-stream", "go-stream")
	var raw strings.Builder
	var times []int64
	for _, ev := range parseGoClient(t, streamed) {
		if ev.Event == "chunk" {
			raw.WriteString("data: " + ev.Data + "\n")
			times = append(times, ev.T)
		}
	}
	assertHeldBack(t, times, released)
	if got := sseContent(t, raw.String()); got != strings.Join(streamContent, "") || countEvents(parseGoClient(t, streamed), "done") != 1 {
		t.Errorf("goclient stream spelled %q; want %q and a [DONE]\n%s", got, strings.Join(streamContent, ""), streamed)
	}

	x.assertBackendSaw(2)
	x.assertClean(out, streamed)
}

func parseGoClient(t *testing.T, out string) []goClientEvent {
	t.Helper()
	var evs []goClientEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev goClientEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("goclient printed %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func countEvents(evs []goClientEvent, kind string) int {
	n := 0
	for _, ev := range evs {
		if ev.Event == kind {
			n++
		}
	}
	return n
}
