package policy

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// Explanation is what the gateway would decide for a request now, and why:
// the same steps, in the same order and with the same functions, as the
// pipeline (route the host, check the agent, normalise the path, apply
// the grant), without sending anything.
type Explanation struct {
	Agent    string       `json:"agent"`
	Method   string       `json:"method"`
	Host     string       `json:"host"`
	Backend  string       `json:"backend,omitempty"`
	RawPath  string       `json:"raw_path"`
	Path     string       `json:"path,omitempty"` // normalised, as the grant sees it
	Grant    *store.Grant `json:"grant,omitempty"`
	Allowed  bool         `json:"allowed"`
	Status   int          `json:"status"`           // what the agent would get from the gateway (200: forwarded)
	Type     string       `json:"type,omitempty"`   // the error type when refused
	Reason   string       `json:"reason,omitempty"` // the rule that decides
	Limits   []string     `json:"limits,omitempty"` // rate limits that apply
	Disabled bool         `json:"disabled,omitempty"`
}

// Explain decides for agent sending method to host with the raw (escaped)
// path, against the view v.
func Explain(v *state.State, agent, method, host, rawPath string) Explanation {
	e := Explanation{Agent: agent, Method: method, Host: store.RequestHost(host), RawPath: rawPath}
	refuse := func(d *deny.Denial) Explanation {
		e.Status, e.Type, e.Reason = d.Status, d.Type, d.Reason
		return e
	}
	rt := v.RouteHost(e.Host)
	if rt == nil {
		return refuse(deny.New(http.StatusMisdirectedRequest, deny.Misdirected, "no backend is registered for host "+store.PrintableName(e.Host)))
	}
	b := &rt.Backend
	e.Backend = b.Name
	a := v.Agent(agent)
	switch {
	case a == nil:
		return refuse(deny.New(http.StatusUnauthorized, deny.Unauthenticated, "no agent "+agent+": its credential would identify no agent"))
	case a.Disabled:
		e.Disabled = true
		return refuse(deny.Policy("agent disabled"))
	}
	g := v.Grant(agent, b.Name)
	e.Grant = g
	norm, d := Decide(g, agent, b.Name, method, rawPath)
	e.Path = norm
	if d != nil {
		return refuse(d)
	}
	for _, l := range []struct{ who, rate string }{{"grant", g.Rate}, {"agent", a.Rate}, {"backend", b.Rate}} {
		if l.rate != "" {
			e.Limits = append(e.Limits, l.who+" "+l.rate)
		}
	}
	if a.MaxConcurrent > 0 {
		e.Limits = append(e.Limits, "agent max concurrent "+strconv.Itoa(a.MaxConcurrent))
	}
	e.Allowed, e.Status = true, http.StatusOK
	e.Reason = "allowed by the grant of " + agent + " on " + b.Name + " (" + strings.Join(g.Methods, ",") + " " + strings.Join(g.Paths, " ") + ")"
	return e
}

// Decide is the pipeline's policy step for an identified agent: the method
// must not be CONNECT, the raw path must normalise unambiguously, and the
// grant must allow the method on the normalised path. It returns the
// normalised path, or the refusal.
func Decide(g *store.Grant, agent, backend, method, rawPath string) (string, *deny.Denial) {
	if method == http.MethodConnect {
		return "", deny.New(http.StatusBadRequest, deny.BadRequest, "CONNECT is not supported: agw is not a forward proxy")
	}
	norm, why := NormalizePath(rawPath)
	if why != "" {
		return "", deny.New(http.StatusBadRequest, deny.BadRequest, why+"; the gateway refuses ambiguous paths rather than guess how the backend reads them")
	}
	if d := Authorize(g, agent, backend, method, norm); d != nil {
		return norm, d
	}
	return norm, nil
}
