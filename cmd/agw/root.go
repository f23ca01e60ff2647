package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/daemon"
)

// app is what the commands depend on: the global flag values and the few
// outside effects tests replace (environment, daemon entry points, clock).
type app struct {
	getenv  func(string) string
	initDir func(dataDir string) (created bool, err error)
	serve   func(ctx context.Context, cfg daemon.Config) error
	now     func() time.Time
	// isTerminal reports whether a person is at the terminal (bare agw → TUI).
	isTerminal func() bool
	clientTTL  time.Duration // per-call timeout; zero is the client's default
	// systemSocket is the packaged daemon's socket, which members of its
	// --admin-group use when they run no daemon of their own.
	systemSocket string
	// defaultRoute finds the default route's interface address for the DNS
	// listener's default; nil is routeAddr.
	defaultRoute defaultRouteFunc
	// defaultSocket is the data directory's socket (admin.DefaultSocket).
	defaultSocket func(dataDir string) string

	// Global flags.
	socket   string
	dataDir  string
	output   string
	logLevel string
}

// newApp returns an app wired to the real environment and daemon.
func newApp() *app {
	return &app{
		getenv:        os.Getenv,
		initDir:       daemon.Init,
		serve:         daemon.Run,
		now:           time.Now,
		isTerminal:    onTerminal,
		systemSocket:  systemSocketPath,
		defaultSocket: admin.DefaultSocket,
	}
}

// systemSocketPath is where the packaged (systemd) daemon puts its socket.
const systemSocketPath = "/run/agw/admin.sock"

// run executes one command line and returns the process exit code.
func (a *app) run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := a.newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return report(stderr, a.explainDaemonDown(root.ExecuteContext(ctx)))
}

// daemonDownError is admin.ErrDaemonNotRunning with a message naming every
// socket the CLI looked at.
type daemonDownError struct {
	err error
	msg string
}

func (e *daemonDownError) Error() string { return e.msg }
func (e *daemonDownError) Unwrap() error { return e.err }

// explainDaemonDown names both the user's own and the system daemon's socket
// when neither answered and no socket was given explicitly.
func (a *app) explainDaemonDown(err error) error {
	if !errors.Is(err, admin.ErrDaemonNotRunning) {
		return err
	}
	own, explicit := a.ownSocket()
	if explicit || own == a.systemSocket || a.systemSocket == "" {
		return err
	}
	return &daemonDownError{err: err, msg: fmt.Sprintf(
		"%s: no daemon answers on %s (your own) nor on %s (the system's): start one with `agw serve`, or point --socket/AGW_SOCKET at the running daemon's socket",
		admin.ErrDaemonNotRunning, own, a.systemSocket)}
}

// dataDirPath resolves --data-dir, then AGW_DATA_DIR, then the default.
func (a *app) dataDirPath() string {
	if a.dataDir != "" {
		return a.dataDir
	}
	if d := a.getenv("AGW_DATA_DIR"); d != "" {
		return d
	}
	return admin.DefaultDataDir()
}

// socketPath resolves --socket, then AGW_SOCKET, then the data directory's
// default; when that socket does not exist and the system daemon's does (a
// member of its --admin-group running no daemon of their own), the system's.
func (a *app) socketPath() string {
	own, explicit := a.ownSocket()
	if explicit || own == a.systemSocket || a.systemSocket == "" {
		return own
	}
	if _, err := os.Stat(own); err == nil {
		return own
	}
	if fi, err := os.Stat(a.systemSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
		return a.systemSocket
	}
	return own
}

// ownSocket is the socket --socket or AGW_SOCKET name (explicit), or the
// data directory's default.
func (a *app) ownSocket() (path string, explicit bool) {
	if a.socket != "" {
		return a.socket, true
	}
	if s := a.getenv("AGW_SOCKET"); s != "" {
		return s, true
	}
	if a.defaultSocket == nil {
		return admin.DefaultSocket(a.dataDirPath()), false
	}
	return a.defaultSocket(a.dataDirPath()), false
}

// client returns an admin API client for the resolved socket.
func (a *app) client() *admin.Client {
	return &admin.Client{Socket: a.socketPath(), Timeout: a.clientTTL}
}

func (a *app) jsonOutput() bool { return a.output == outputJSON }

func (a *app) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "agw",
		Short: "agw keeps backend API credentials out of AI agents",
		Long: `agw is a TLS-terminating gateway: agents call their APIs as usual with a
credential worthless anywhere else, and agw swaps in the real one.

'agw serve' runs the daemon; every other command talks to it over its admin socket.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       fmt.Sprintf("%s (commit %s, built %s, %s)", version, commit, date, runtime.Version()),
		Args:          noSubcommand,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != outputTable && a.output != outputJSON {
				return &usageError{cmd.CommandPath(), fmt.Errorf("invalid -o %q: use table or json", a.output)}
			}
			if a.jsonOutput() {
				for c := cmd; c != nil; c = c.Parent() {
					if why, ok := c.Annotations[noJSON]; ok {
						return &usageError{cmd.CommandPath(), fmt.Errorf("-o json does not apply to '%s': %s", cmd.CommandPath(), why)}
					}
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Bare `agw` opens the TUI for a person at a terminal; a script
			// or pipe gets the help text.
			if a.isTerminal != nil && a.isTerminal() {
				return a.runTUI(cmd, false)
			}
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("agw {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd.CommandPath(), err}
	})

	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", "", "admin socket of the daemon (env AGW_SOCKET; default admin.sock in the data directory, or /run/agw/admin.sock when that does not exist and this does; always /run/agw/admin.sock for root)")
	pf.StringVar(&a.dataDir, "data-dir", "", "data directory (env AGW_DATA_DIR; default /var/lib/agw for root, else $XDG_STATE_HOME/agw or ~/.local/state/agw)")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level of 'agw serve': debug, info, warn or error")
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletion(outputTable, outputJSON))
	_ = root.RegisterFlagCompletionFunc("log-level", fixedCompletion("debug", "info", "warn", "error"))

	root.AddCommand(
		a.newServeCmd(),
		a.newInitCmd(),
		a.newClusterCmd(),
		a.newClusterMigrateCmd(),
		a.newStatusCmd(),
		a.newVersionCmd(),
		a.newBackendCmd(),
		a.newAgentCmd(),
		a.newGrantCmd(),
		a.newTokenCmd(),
		a.newIdPCmd(),
		a.newPassthroughCmd(),
		a.newEnforceCmd(),
		a.newAuditCmd(),
		a.newCACmd(),
		a.newDNSCmd(),
		a.newTUICmd(),
	)
	// cobra adds `completion` itself when it executes; added now, it can
	// refuse -o json like the other commands that print no data.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Annotations = map[string]string{noJSON: "it prints a shell script"}
		}
	}
	return root
}

// newGroupCmd returns a command that only holds subcommands: bare, it prints
// its help; with an unknown subcommand, it is a usage error.
func newGroupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	c.AddCommand(subs...)
	return c
}

// noSubcommand refuses arguments on a command that only has subcommands.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &usageError{cmd.CommandPath(), fmt.Errorf("%s", msg)}
}

// exactArgs requires the named positional arguments and no others. Its
// messages never repeat the arguments, which might be a mistyped secret.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		want := strings.Join(names, " ")
		var err error
		switch {
		case len(args) < len(names):
			err = fmt.Errorf("missing %s: '%s' takes %s", strings.Join(names[len(args):], " "), cmd.CommandPath(), want)
		case len(names) == 0:
			err = fmt.Errorf("'%s' takes no arguments; got %d", cmd.CommandPath(), len(args))
		default:
			err = fmt.Errorf("too many arguments: '%s' takes %s; got %d arguments", cmd.CommandPath(), want, len(args))
		}
		return &usageError{cmd.CommandPath(), err}
	}
}

// chainArgs runs argument validators in order.
func chainArgs(checks ...cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		for _, c := range checks {
			if err := c(cmd, args); err != nil {
				return err
			}
		}
		return nil
	}
}

// usagef returns a usage error for cmd.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd.CommandPath(), fmt.Errorf(format, args...)}
}

// Shell completion of object names. It asks the daemon with a short timeout
// and offers nothing, silently, when the daemon does not answer.

// lister returns the names that complete one argument.
type lister func(ctx context.Context, c *admin.Client) ([]string, error)

const completionTimeout = 2 * time.Second

// completeArgs completes positional argument i with positions[i].
func (a *app) completeArgs(positions ...lister) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= len(positions) || positions[len(args)] == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return a.complete(cmd, positions[len(args)]), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFlag completes a flag's value with l.
func (a *app) completeFlag(l lister) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return a.complete(cmd, l), cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) complete(cmd *cobra.Command, l lister) []cobra.Completion {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	c := a.client()
	c.Timeout = completionTimeout
	names, err := l(ctx, c)
	if err != nil {
		return nil
	}
	return names
}

func backendNames(ctx context.Context, c *admin.Client) ([]string, error) {
	bs, err := c.Backends(ctx)
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	return names, err
}

func agentNames(ctx context.Context, c *admin.Client) ([]string, error) {
	as, err := c.Agents(ctx)
	var names []string
	for _, ag := range as {
		names = append(names, ag.Name)
	}
	return names, err
}

func idpNames(ctx context.Context, c *admin.Client) ([]string, error) {
	ps, err := c.IdPs(ctx)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names, err
}

func passthroughHosts(ctx context.Context, c *admin.Client) ([]string, error) {
	ps, err := c.Passthrough(ctx)
	var hosts []string
	for _, p := range ps {
		hosts = append(hosts, p.Host)
	}
	return hosts, err
}

// activeTokenIDs lists the tokens that can still be revoked.
func (a *app) activeTokenIDs(ctx context.Context, c *admin.Client) ([]string, error) {
	ts, err := c.Tokens(ctx, "")
	var ids []string
	for _, t := range ts {
		if t.Active(a.now()) {
			ids = append(ids, cobra.CompletionWithDesc(t.ID, strings.TrimSpace(t.Agent+" "+t.Label)))
		}
	}
	return ids, err
}
