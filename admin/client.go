package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agw-dev/agw/store"
)

// ErrDaemonNotRunning is returned when nothing listens on the admin socket.
var ErrDaemonNotRunning = errors.New("agw daemon is not running")

// DefaultDataDir is the data directory used when none is given:
// /var/lib/agw for root, else $XDG_STATE_HOME/agw or ~/.local/state/agw.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/agw"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "agw")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "agw-"+strconv.Itoa(os.Getuid()))
	}
	return filepath.Join(home, ".local", "state", "agw")
}

// DefaultSocket is the admin socket used when none is given: /run/agw/admin.sock
// for root, else admin.sock inside the data directory.
func DefaultSocket(dataDir string) string {
	if os.Geteuid() == 0 {
		return "/run/agw/admin.sock"
	}
	return filepath.Join(dataDir, "admin.sock")
}

// Client talks to the daemon's admin API. The zero value uses the default
// socket of the default data directory.
type Client struct {
	// Socket is the admin socket path; empty means DefaultSocket(DefaultDataDir()).
	Socket string
	// Timeout bounds each non-streaming call; zero means 30s.
	Timeout time.Duration
}

func (c *Client) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return DefaultSocket(DefaultDataDir())
}

func (c *Client) httpClient(streaming bool) *http.Client {
	sock := c.socket()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableCompression: true,
	}
	hc := &http.Client{Transport: tr}
	if !streaming {
		hc.Timeout = c.Timeout
		if hc.Timeout == 0 {
			hc.Timeout = 30 * time.Second
		}
	}
	return hc
}

// Error is an error answered by the daemon. It matches the store sentinel of
// its code with errors.Is.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

// Is maps the error's code to the store sentinels.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeNotFound:
		return target == store.ErrNotFound
	case CodeExists:
		return target == store.ErrExists
	case CodeInvalid:
		return target == store.ErrInvalid
	case CodeConflict:
		return target == store.ErrConflict
	case CodeForbidden:
		return target == store.ErrForbidden
	}
	return false
}

// do sends a JSON request and decodes a JSON response into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, query, in, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if s, ok := out.(*string); ok {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("read response: %w", err)
		}
		*s = string(b)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode response from daemon: %w", err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any, streaming bool) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := "http://agw" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient(streaming).Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

func (c *Client) dialError(err error) error {
	sock := c.socket()
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (no daemon answers on %s): start it with `agw serve`, or point --socket/AGW_SOCKET at the running daemon's socket", ErrDaemonNotRunning, sock)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w: permission denied on %s: run as root, as the daemon's user, or as a member of its --admin-group", store.ErrForbidden, sock)
	}
	return fmt.Errorf("talk to agw daemon at %s: %w", sock, err)
}

func decodeError(resp *http.Response) error {
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Message == "" {
		return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("daemon answered %s", resp.Status)}
	}
	return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field}
}

func pathFor(pattern string, args ...string) string {
	// Replace each {param} in order with the escaped argument.
	var b strings.Builder
	rest := pattern
	for _, a := range args {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 || j < i {
			break
		}
		b.WriteString(rest[:i])
		b.WriteString(url.PathEscape(a))
		rest = rest[j+1:]
	}
	b.WriteString(rest)
	return b.String()
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, PathStatus, nil, nil, &s)
}

// Backends lists backends.
func (c *Client) Backends(ctx context.Context) ([]store.Backend, error) {
	var bs []store.Backend
	return bs, c.do(ctx, http.MethodGet, PathBackends, nil, nil, &bs)
}

// Backend returns one backend with its grants.
func (c *Client) Backend(ctx context.Context, name string) (*BackendDetail, error) {
	var d BackendDetail
	return &d, c.do(ctx, http.MethodGet, pathFor(PathBackend, name), nil, nil, &d)
}

// AddBackend registers a backend and its first credential.
func (c *Client) AddBackend(ctx context.Context, req AddBackendRequest) (*store.Backend, error) {
	var b store.Backend
	return &b, c.do(ctx, http.MethodPost, PathBackends, nil, req, &b)
}

// UpdateBackend changes a backend's settings.
func (c *Client) UpdateBackend(ctx context.Context, name string, req UpdateBackendRequest) (*store.Backend, error) {
	var b store.Backend
	return &b, c.do(ctx, http.MethodPatch, pathFor(PathBackend, name), nil, req, &b)
}

// RotateBackend stores a new credential version.
func (c *Client) RotateBackend(ctx context.Context, name string, secret SecretInput) (*store.Backend, error) {
	var b store.Backend
	return &b, c.do(ctx, http.MethodPost, pathFor(PathRotate, name), nil, RotateRequest{Secret: secret}, &b)
}

// RemoveBackend deletes a backend, its credentials and its grants.
func (c *Client) RemoveBackend(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, pathFor(PathBackend, name), nil, nil, nil)
}

// Agents lists agents with their token and grant counts.
func (c *Client) Agents(ctx context.Context) ([]AgentSummary, error) {
	var as []AgentSummary
	return as, c.do(ctx, http.MethodGet, PathAgents, nil, nil, &as)
}

// Agent returns one agent with its grants and tokens.
func (c *Client) Agent(ctx context.Context, name string) (*AgentDetail, error) {
	var d AgentDetail
	return &d, c.do(ctx, http.MethodGet, pathFor(PathAgent, name), nil, nil, &d)
}

// AddAgent registers an agent.
func (c *Client) AddAgent(ctx context.Context, a store.Agent) (*store.Agent, error) {
	var out store.Agent
	return &out, c.do(ctx, http.MethodPost, PathAgents, nil, a, &out)
}

// UpdateAgent changes an agent's settings (enable/disable, limits).
func (c *Client) UpdateAgent(ctx context.Context, name string, req UpdateAgentRequest) (*store.Agent, error) {
	var out store.Agent
	return &out, c.do(ctx, http.MethodPatch, pathFor(PathAgent, name), nil, req, &out)
}

// RemoveAgent deletes an agent with its grants and tokens.
func (c *Client) RemoveAgent(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, pathFor(PathAgent, name), nil, nil, nil)
}

// Grants lists grants, of one agent when agent is not empty.
func (c *Client) Grants(ctx context.Context, agent string) ([]store.Grant, error) {
	var gs []store.Grant
	q := url.Values{}
	if agent != "" {
		q.Set("agent", agent)
	}
	return gs, c.do(ctx, http.MethodGet, PathGrants, q, nil, &gs)
}

// PutGrant creates the grant for (g.Agent, g.Backend). It fails with
// store.ErrExists, describing the existing grant, when there is one, and
// with store.ErrInvalid when g names no method or no path ("*" and "/**"
// allow every one).
func (c *Client) PutGrant(ctx context.Context, g store.Grant) (*store.Grant, error) {
	var out store.Grant
	return &out, c.do(ctx, http.MethodPost, PathGrants, nil, g, &out)
}

// ReplaceGrant creates the grant for (g.Agent, g.Backend) or replaces the
// existing one, with PutGrant's rules for methods and paths.
func (c *Client) ReplaceGrant(ctx context.Context, g store.Grant) (*store.Grant, error) {
	var out store.Grant
	return &out, c.do(ctx, http.MethodPost, PathGrants, url.Values{"replace": {"true"}}, g, &out)
}

// RemoveGrant deletes the grant for (agent, backend).
func (c *Client) RemoveGrant(ctx context.Context, agent, backend string) error {
	return c.do(ctx, http.MethodDelete, pathFor(PathGrant, agent, backend), nil, nil, nil)
}

// Tokens lists token records (never token values), of one agent when agent
// is not empty.
func (c *Client) Tokens(ctx context.Context, agent string) ([]store.Token, error) {
	var ts []store.Token
	q := url.Values{}
	if agent != "" {
		q.Set("agent", agent)
	}
	return ts, c.do(ctx, http.MethodGet, PathTokens, q, nil, &ts)
}

// MintToken creates a gateway token and returns it; the value is never
// available again.
func (c *Client) MintToken(ctx context.Context, req MintRequest) (*MintedToken, error) {
	var m MintedToken
	return &m, c.do(ctx, http.MethodPost, PathTokens, nil, req, &m)
}

// RevokeToken revokes a token by id.
func (c *Client) RevokeToken(ctx context.Context, id string) (*store.Token, error) {
	var t store.Token
	return &t, c.do(ctx, http.MethodPost, pathFor(PathTokenRevoke, id), nil, nil, &t)
}

// IdPs lists identity providers.
func (c *Client) IdPs(ctx context.Context) ([]store.IdP, error) {
	var ps []store.IdP
	return ps, c.do(ctx, http.MethodGet, PathIdPs, nil, nil, &ps)
}

// AddIdP registers an identity provider.
func (c *Client) AddIdP(ctx context.Context, p store.IdP) (*store.IdP, error) {
	var out store.IdP
	return &out, c.do(ctx, http.MethodPost, PathIdPs, nil, p, &out)
}

// RemoveIdP deletes an identity provider no agent uses.
func (c *Client) RemoveIdP(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, pathFor(PathIdP, name), nil, nil, nil)
}

// Passthrough lists the hosts the proxy listener opens plain tunnels to.
func (c *Client) Passthrough(ctx context.Context) ([]store.Passthrough, error) {
	var ps []store.Passthrough
	return ps, c.do(ctx, http.MethodGet, PathPassthrough, nil, nil, &ps)
}

// AddPassthrough lists a host (exact or "*.base") for pass-through tunnels.
func (c *Client) AddPassthrough(ctx context.Context, host string) (*store.Passthrough, error) {
	var out store.Passthrough
	return &out, c.do(ctx, http.MethodPost, PathPassthrough, nil, store.Passthrough{Host: host}, &out)
}

// RemovePassthrough takes a host off the pass-through list.
func (c *Client) RemovePassthrough(ctx context.Context, host string) error {
	return c.do(ctx, http.MethodDelete, pathFor(PathPassHost, host), nil, nil, nil)
}

// CA returns the PEM certificate of the gateway's CA.
func (c *Client) CA(ctx context.Context) (string, error) {
	var pem string
	return pem, c.do(ctx, http.MethodGet, PathCA, nil, nil, &pem)
}

// DNSExport returns the DNS overrides for the registered hosts in format.
func (c *Client) DNSExport(ctx context.Context, format string) (string, error) {
	var out string
	return out, c.do(ctx, http.MethodGet, PathDNSExport, url.Values{"format": {format}}, nil, &out)
}

// AuditVerify walks the audit hash chain.
func (c *Client) AuditVerify(ctx context.Context) (*AuditVerifyResult, error) {
	return c.AuditVerifyWith(ctx, nil)
}

// AuditVerifyWith verifies the trail against the gateway's checkpoints and
// the ones given (kept outside the gateway).
func (c *Client) AuditVerifyWith(ctx context.Context, cps []store.AuditCheckpoint) (*AuditVerifyResult, error) {
	var r AuditVerifyResult
	return &r, c.do(ctx, http.MethodPost, PathAuditVerify, nil, AuditVerifyRequest{Checkpoints: cps}, &r)
}

// AuditCheckpoint has the daemon sign the audit chain's head now and
// returns the checkpoint, to keep outside the gateway host.
func (c *Client) AuditCheckpoint(ctx context.Context) (*store.AuditCheckpoint, error) {
	var cp store.AuditCheckpoint
	return &cp, c.do(ctx, http.MethodPost, PathAuditCheckpoint, nil, nil, &cp)
}

// EncodeAuditQuery turns a query into URL parameters.
func EncodeAuditQuery(q store.AuditQuery, follow bool) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.AfterSeq != 0 {
		v.Set("after_seq", strconv.FormatUint(q.AfterSeq, 10))
	}
	if q.BeforeSeq != 0 {
		v.Set("before_seq", strconv.FormatUint(q.BeforeSeq, 10))
	}
	set("agent", q.Agent)
	set("backend", q.Backend)
	set("decision", q.Decision)
	set("kind", q.Kind)
	if q.Status != 0 {
		v.Set("status", strconv.Itoa(q.Status))
	}
	if q.Last != 0 {
		v.Set("last", strconv.Itoa(q.Last))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if follow {
		v.Set("follow", "1")
	}
	return v
}

// DecodeAuditQuery parses URL parameters written by EncodeAuditQuery.
func DecodeAuditQuery(v url.Values) (q store.AuditQuery, follow bool, err error) {
	parseTime := func(k string) (time.Time, error) {
		s := v.Get(k)
		if s == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return t, &store.FieldError{Field: k, Value: s, Reason: "use an RFC 3339 time like 2026-01-02T15:04:05Z"}
		}
		return t, nil
	}
	parseInt := func(k string) (int, error) {
		s := v.Get(k)
		if s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, &store.FieldError{Field: k, Value: s, Reason: "must be a whole number"}
		}
		return n, nil
	}
	if q.Since, err = parseTime("since"); err != nil {
		return
	}
	if q.Until, err = parseTime("until"); err != nil {
		return
	}
	if s := v.Get("after_seq"); s != "" {
		if q.AfterSeq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return q, false, &store.FieldError{Field: "after_seq", Value: s, Reason: "must be a whole number"}
		}
	}
	if s := v.Get("before_seq"); s != "" {
		if q.BeforeSeq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return q, false, &store.FieldError{Field: "before_seq", Value: s, Reason: "must be a whole number"}
		}
	}
	q.Agent, q.Backend, q.Decision, q.Kind = v.Get("agent"), v.Get("backend"), v.Get("decision"), v.Get("kind")
	if q.Decision != "" && q.Decision != store.Allow && q.Decision != store.Deny {
		return q, false, &store.FieldError{Field: "decision", Value: q.Decision, Reason: "use allow or deny"}
	}
	if q.Status, err = parseInt("status"); err != nil {
		return
	}
	if q.Last, err = parseInt("last"); err != nil {
		return
	}
	if q.Limit, err = parseInt("limit"); err != nil {
		return
	}
	follow = v.Get("follow") == "1"
	return q, follow, nil
}

// Audit reads audit events matching q, calling fn for each stream message in
// order. With follow, it keeps reading new events until ctx is done or fn
// returns an error; without, it returns after the stored events.
func (c *Client) Audit(ctx context.Context, q store.AuditQuery, follow bool, fn func(StreamMessage) error) error {
	resp, err := c.send(ctx, http.MethodGet, PathAudit, EncodeAuditQuery(q, follow), nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m StreamMessage
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("decode audit stream: %w", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read audit stream: %w", err)
	}
	return nil
}
