// Package tui is agw's interactive terminal UI: an overview of the running
// daemon; the backends, agents, tokens, grants and identity providers it
// manages, each listed, added, edited and removed on a screen of its own;
// and the live audit stream. It is a client of the admin API like the CLI, never opens the
// store, and never displays a backend secret.
package tui

import (
	"context"
	"errors"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// API is the part of the admin client the TUI uses. *admin.Client satisfies
// it; tests pass an in-process fake.
type API interface {
	Status(ctx context.Context) (*admin.Status, error)
	Backends(ctx context.Context) ([]store.Backend, error)
	Backend(ctx context.Context, name string) (*admin.BackendDetail, error)
	AddBackend(ctx context.Context, req admin.AddBackendRequest) (*store.Backend, error)
	UpdateBackend(ctx context.Context, name string, req admin.UpdateBackendRequest) (*store.Backend, error)
	RotateBackend(ctx context.Context, name string, secret admin.SecretInput) (*store.Backend, error)
	RemoveBackend(ctx context.Context, name string) error
	Agents(ctx context.Context) ([]admin.AgentSummary, error)
	Agent(ctx context.Context, name string) (*admin.AgentDetail, error)
	AddAgent(ctx context.Context, a store.Agent) (*store.Agent, error)
	UpdateAgent(ctx context.Context, name string, req admin.UpdateAgentRequest) (*store.Agent, error)
	RemoveAgent(ctx context.Context, name string) error
	Grants(ctx context.Context, agent string) ([]store.Grant, error)
	PutGrant(ctx context.Context, g store.Grant) (*store.Grant, error)
	RemoveGrant(ctx context.Context, agent, backend string) error
	Tokens(ctx context.Context, agent string) ([]store.Token, error)
	MintToken(ctx context.Context, req admin.MintRequest) (*admin.MintedToken, error)
	RevokeToken(ctx context.Context, id string) (*store.Token, error)
	IdPs(ctx context.Context) ([]store.IdP, error)
	AddIdP(ctx context.Context, p store.IdP) (*store.IdP, error)
	RemoveIdP(ctx context.Context, name string) error
	Audit(ctx context.Context, q store.AuditQuery, follow bool, fn func(admin.StreamMessage) error) error
}

var _ API = (*admin.Client)(nil)

// Options configure the TUI.
type Options struct {
	// NoColor turns colour off; the NO_COLOR environment variable does too.
	NoColor bool
	// Refresh is how often the daemon is polled (and retried when it is
	// unreachable); zero means two seconds.
	Refresh time.Duration
	// Version is the client's version, shown beside the daemon's.
	Version string
}

const defaultRefresh = 2 * time.Second

func (o Options) refresh() time.Duration {
	if o.Refresh > 0 {
		return o.Refresh
	}
	return defaultRefresh
}

func (o Options) noColor() bool {
	return o.NoColor || os.Getenv("NO_COLOR") != ""
}

// Run shows the TUI on the terminal until the user quits or ctx is done.
// It returns an error only if the terminal cannot be driven; an unreachable
// daemon is shown inside the TUI and retried.
func Run(ctx context.Context, api API, opts Options) error {
	m := newModel(api, opts, time.Now)
	defer m.close()
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // cancelled by the caller, not a failure
	}
	return err
}

// NewModel returns the TUI's root model, for driving it in tests
// (teatest) or embedding it in another program.
func NewModel(api API, opts Options) tea.Model {
	return newModel(api, opts, time.Now)
}
