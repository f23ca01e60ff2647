package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// sparkSamples is how many request-count windows the overview keeps.
const sparkSamples = 60

// overview shows the daemon at a glance: version and uptime, listeners,
// what is configured, the request rate and the latest denies.
type overview struct {
	c       *common
	version string
	status  *admin.Status
	at      string // when status was read
	denies  []store.AuditEvent
	reqs    requestBuckets
	err     error
}

func newOverview(c *common, version string) *overview {
	return &overview{c: c, version: version, reqs: requestBuckets{max: sparkSamples, width: c.every}}
}

func (o *overview) title() string      { return "Overview" }
func (o *overview) setSize(int, int)   {}
func (o *overview) capturing() bool    { return false }
func (o *overview) helpKeys() helpKeys { return screenKeys([]key.Binding{}) }

func (o *overview) update(msg tea.Msg) tea.Cmd {
	if d, ok := msg.(dataMsg); ok {
		o.err = d.err
		if d.err == nil {
			o.status, o.denies = d.status, d.denies
			o.reqs.add(d.status.Gateway.Requests, d.at, d.status.StartedAt)
		}
	}
	return nil
}

func (o *overview) view() string {
	st := o.c.st
	if o.status == nil {
		if o.err == nil {
			return st.Muted.Render("Connecting to the agw daemon…")
		}
		msg := st.ErrorBar.Render("Cannot reach the agw daemon") + "\n\n" +
			lipgloss.NewStyle().Width(max(20, o.c.width-4)).Render(o.err.Error()) + "\n\n" +
			st.Muted.Render("Retrying every "+o.c.every.String()+"; this screen fills in when the daemon answers.")
		return st.Box.Render(msg)
	}
	s := o.status
	now := o.c.now()
	client := ""
	if o.version != "" {
		client = " · client " + o.version
	}
	listen := func(v string) string {
		if v == "" {
			return "off"
		}
		return v
	}
	top := o.c.kv(
		"daemon", fmt.Sprintf("agw %s (pid %d)%s", s.Version, s.PID, client),
		"uptime", uptime(now.Sub(s.StartedAt))+" · since "+s.StartedAt.In(o.c.loc).Format("2006-01-02 15:04"),
		"https", listen(s.Listeners.HTTPS),
		"dns", listen(s.Listeners.DNS),
		"admin", listen(s.Listeners.Admin),
		"configured", fmt.Sprintf("%d backends · %d agents · %d grants · %d active tokens", s.Counts.Backends, s.Counts.Agents, s.Counts.Grants, s.Counts.Tokens),
		"traffic", fmt.Sprintf("%d requests · %d allowed · %d denied · %d TLS refused", s.Gateway.Requests, s.Gateway.Allowed, s.Gateway.Denied, s.Gateway.TLSRefused),
	)

	var b strings.Builder
	b.WriteString(top)
	b.WriteString("\n\n")
	rates := o.reqs.counts
	if w := o.c.width - 2; len(rates) > w && w > 0 {
		rates = rates[len(rates)-w:]
	}
	every := short(o.reqs.width)
	span := time.Duration(len(rates)) * o.reqs.width
	b.WriteString(truncate(st.Title.Render("Requests in each "+every+" window")+
		st.Muted.Render(fmt.Sprintf("  latest %.0f · most %.0f · total %.0f over %s",
			o.reqs.current(), o.reqs.peak(), sum(rates), short(span))), o.c.width))
	b.WriteString("\n")
	if len(rates) == 0 {
		b.WriteString(st.Muted.Render("(collecting samples…)"))
	} else {
		b.WriteString(st.Spark.Render(sparkline(rates)))
	}
	b.WriteString("\n\n")
	b.WriteString(st.Title.Render("Latest denies"))
	b.WriteString("\n")
	if len(o.denies) == 0 {
		b.WriteString(st.Muted.Render("none"))
	}
	for i := len(o.denies) - 1; i >= 0; i-- {
		b.WriteString(truncate(st.Deny.Render(o.c.auditLine(&o.denies[i])), o.c.width))
		if i > 0 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func sum(vs []float64) float64 {
	t := 0.0
	for _, v := range vs {
		t += v
	}
	return t
}

// auditLine is the one-line form of an audit record, shared by the
// overview and the audit screen.
func (c *common) auditLine(ev *store.AuditEvent) string {
	return store.Printable(c.rawAuditLine(ev)) // what agents sent is escaped (bidi, controls)
}

func (c *common) rawAuditLine(ev *store.AuditEvent) string {
	who := ev.Agent
	if who == "" {
		who = "-"
	}
	switch ev.Kind {
	case store.KindAdmin:
		return fmt.Sprintf("%s  admin  %s %s (uid %d)", c.clock(ev.Time), ev.Action, ev.Target, ev.PeerUID)
	case store.KindTLS:
		return fmt.Sprintf("%s  %-5s  tls %s %s", c.clock(ev.Time), ev.Decision, ev.Host, ev.Reason)
	}
	line := fmt.Sprintf("%s  %-5s  %s → %s  %s %s", c.clock(ev.Time), ev.Decision, who, ev.Backend, ev.Method, ev.Path)
	if ev.Status != 0 {
		line += fmt.Sprintf("  %d", ev.Status)
	}
	if ev.Reason != "" {
		line += "  " + ev.Reason
	}
	return line
}
