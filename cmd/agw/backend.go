package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func (a *app) newBackendCmd() *cobra.Command {
	return newGroupCmd("backend", "Register the APIs agents call and hold their credentials",
		a.newBackendAddCmd(),
		a.newBackendListCmd(),
		a.newBackendShowCmd(),
		a.newBackendRotateCmd(),
		a.newBackendUpdateCmd(),
		a.newBackendRemoveCmd(),
	)
}

type backendAddFlags struct {
	hosts          []string
	upstream       string
	upstreamCAFile string
	allowPlainHTTP bool
	timeout        time.Duration
	inject         string
	header         string
	prefix         string
	queryParam     string
	basicUser      string
	tokenURL       string
	clientID       string
	scopes         []string
	tokenParams    []string
	rate           string
	burst          int
	noScrub        bool
	secret         secretSource
}

func (a *app) newBackendAddCmd() *cobra.Command {
	var f backendAddFlags
	modes := make([]string, len(store.InjectModes))
	for i, m := range store.InjectModes {
		modes[i] = string(m)
	}
	cmd := &cobra.Command{
		Use:   "add NAME --host HOST (--secret-stdin | --secret-file FILE | --secret-env VAR)",
		Short: "Register a backend and its credential",
		Long: `Register a backend: the host names agents call, where to forward, and how to
inject its credential. The credential comes from stdin, a file or an
environment variable, never from the command line.

Without --inject, the mode follows from the flags given: --header means header,
--query-param query, --basic-user basic, --token-url oauth2, otherwise bearer.`,
		Example: `  printf %s "$OPENAI_API_KEY" | agw backend add openai --host api.openai.com --secret-stdin
  agw backend add crm --host crm.corp.net --inject header --header x-api-key --secret-file /run/keys/crm
  agw backend add hr --host hr.corp.net --upstream https://10.0.0.5:8443 --upstream-ca hr-ca.pem --secret-env HR_TOKEN`,
		Args: chainArgs(refuseSecretFlags, exactArgs("NAME")),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd, args[0])
			if err != nil {
				return err
			}
			scrubOff := func() (bool, error) { return req.Backend.NoScrub, nil }
			if req.Secret, err = f.secret.read(cmd, a.getenv, scrubOff); err != nil {
				return err
			}
			b, err := a.client().AddBackend(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), b)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added backend %s (%s), credential version %d\n", b.Name, strings.Join(b.Hosts, ", "), b.CredentialVersion)
			fmt.Fprintf(cmd.OutOrStdout(), "next: agw grant add AGENT %s, and point DNS for its hosts at agw (agw dns export)\n", b.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.hosts, "host", nil, "`HOST` name agents call, like api.openai.com or *.crm.example.com; repeat for several (required)")
	fl.StringVar(&f.upstream, "upstream", "", "forward to `URL` (https://host[:port]) instead of the requested host on port 443")
	fl.StringVar(&f.upstreamCAFile, "upstream-ca", "", "PEM `FILE` of extra CA certificates trusted for the upstream")
	fl.BoolVar(&f.allowPlainHTTP, "allow-plain-http", false, "allow an http:// upstream (the credential crosses the network unencrypted)")
	fl.Var(durationValue{&f.timeout}, "timeout", "wait at most `DUR` for the upstream's response headers (default the gateway's)")
	fl.Var(newEnumValue(&f.inject, "", modes...), "inject", "how the credential is sent: "+strings.Join(modes, ", "))
	fl.StringVar(&f.header, "header", "", "header mode: header `NAME`, like x-api-key")
	fl.StringVar(&f.prefix, "prefix", "", "header mode: text before the credential, like \"Token \"")
	fl.StringVar(&f.queryParam, "query-param", "", "query mode: query parameter `NAME`, like key")
	fl.StringVar(&f.basicUser, "basic-user", "", "basic mode: the Basic-auth `USER` (the credential is the password)")
	fl.StringVar(&f.tokenURL, "token-url", "", "oauth2 mode: the token endpoint `URL` (the credential is the client secret)")
	fl.StringVar(&f.clientID, "client-id", "", "oauth2 mode: the client `ID`")
	fl.StringSliceVar(&f.scopes, "scope", nil, "oauth2 mode: a `SCOPE` to request; repeat for several")
	fl.StringArrayVar(&f.tokenParams, "token-param", nil, "oauth2 mode: extra token request parameter `k=v`, like audience=...; repeat for several")
	addLimitFlags(cmd, &f.rate, &f.burst, "across all agents")
	fl.BoolVar(&f.noScrub, "no-scrub", false, "do not redact the credential if the backend reflects it in a response")
	addSecretFlags(cmd, &f.secret)
	_ = cmd.RegisterFlagCompletionFunc("inject", fixedCompletion(modes...))
	return cmd
}

// request builds the AddBackendRequest (without its secret) from the flags.
func (f *backendAddFlags) request(cmd *cobra.Command, name string) (admin.AddBackendRequest, error) {
	if len(f.hosts) == 0 {
		return admin.AddBackendRequest{}, usagef(cmd, "--host is required: the name agents call, like api.openai.com")
	}
	b := store.Backend{
		Name:           name,
		Hosts:          f.hosts,
		Upstream:       f.upstream,
		AllowPlainHTTP: f.allowPlainHTTP,
		Timeout:        store.Duration(f.timeout),
		Inject:         store.InjectMode(f.inject),
		Header:         f.header,
		Prefix:         f.prefix,
		QueryParam:     f.queryParam,
		BasicUser:      f.basicUser,
		Rate:           f.rate,
		Burst:          f.burst,
		NoScrub:        f.noScrub,
	}
	if f.upstreamCAFile != "" {
		pem, err := os.ReadFile(f.upstreamCAFile)
		if err != nil {
			return admin.AddBackendRequest{}, fmt.Errorf("read --upstream-ca: %w", err)
		}
		b.UpstreamCA = string(pem)
	}
	if f.tokenURL != "" || f.clientID != "" || len(f.scopes) > 0 || len(f.tokenParams) > 0 {
		o := &store.OAuth2{TokenURL: f.tokenURL, ClientID: f.clientID, Scopes: f.scopes}
		for _, kv := range f.tokenParams {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return admin.AddBackendRequest{}, usagef(cmd, "invalid --token-param %q: use key=value, like audience=https://api.example.com", kv)
			}
			if o.Params == nil {
				o.Params = map[string]string{}
			}
			o.Params[k] = v
		}
		b.OAuth2 = o
	}
	if b.Inject == "" {
		b.Inject = inferInject(&b)
	}
	return admin.AddBackendRequest{Backend: b}, nil
}

// inferInject picks the injection mode the mode-specific flags imply.
func inferInject(b *store.Backend) store.InjectMode {
	switch {
	case b.OAuth2 != nil:
		return store.InjectOAuth2
	case b.Header != "":
		return store.InjectHeader
	case b.QueryParam != "":
		return store.InjectQuery
	case b.BasicUser != "":
		return store.InjectBasic
	}
	return store.InjectBearer
}

func (a *app) newBackendListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List backends",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := a.client().Backends(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), nonNil(bs))
			}
			tw := newTable(cmd.OutOrStdout())
			row(tw, "NAME", "HOSTS", "INJECT", "UPSTREAM", "CREDENTIAL", "RATE")
			for _, b := range bs {
				row(tw, b.Name, strings.Join(b.Hosts, ","), injectSummary(&b), upstreamSummary(&b),
					fmt.Sprintf("v%d %s", b.CredentialVersion, fmtTime(b.CredentialSetAt)), fmtLimit(b.Rate, b.Burst))
			}
			return tw.Flush()
		},
	}
}

func (a *app) newBackendShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "show NAME",
		Short:             "Show a backend, its credential version and its grants (never the credential)",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeArgs(backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.client().Backend(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				d.Grants = nonNil(d.Grants)
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return printBackend(cmd, d)
		},
	}
}

func printBackend(cmd *cobra.Command, d *admin.BackendDetail) error {
	w := cmd.OutOrStdout()
	b := &d.Backend
	tw := newTable(w)
	row(tw, "name", b.Name)
	row(tw, "hosts", strings.Join(b.Hosts, ", "))
	row(tw, "upstream", upstreamSummary(b))
	if b.UpstreamCA != "" {
		row(tw, "upstream CA", "extra PEM roots set")
	}
	timeout := "default"
	if b.Timeout > 0 {
		timeout = b.Timeout.Std().String()
	}
	row(tw, "timeout", timeout)
	row(tw, "inject", injectSummary(b))
	if o := b.OAuth2; o != nil {
		row(tw, "token url", o.TokenURL)
		row(tw, "client id", o.ClientID)
		if len(o.Scopes) > 0 {
			row(tw, "scopes", strings.Join(o.Scopes, " "))
		}
	}
	row(tw, "credential", fmt.Sprintf("version %d, set %s", b.CredentialVersion, fmtTime(b.CredentialSetAt)))
	row(tw, "rate", fmtLimit(b.Rate, b.Burst))
	scrub := "on"
	if b.NoScrub {
		scrub = "off (a reflected credential reaches the agent)"
	}
	row(tw, "scrub", scrub)
	row(tw, "created", fmtTime(b.CreatedAt))
	row(tw, "updated", fmtTime(b.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(d.Grants) == 0 {
		fmt.Fprintf(w, "no grants: no agent may call %s yet (agw grant add AGENT %s)\n", b.Name, b.Name)
	} else {
		tw = newTable(w)
		row(tw, "AGENT", "METHODS", "PATHS", "RATE")
		for _, g := range d.Grants {
			m, p := fmtGrantScope(g)
			row(tw, g.Agent, m, p, fmtLimit(g.Rate, g.Burst))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if warnings := backendWarnings(d); len(warnings) > 0 {
		fmt.Fprintln(w)
		for _, msg := range warnings {
			fmt.Fprintf(w, "warning: %s\n", msg)
		}
	}
	return nil
}

// backendWarnings are the daemon's warnings plus those the CLI can see for
// itself, in case the daemon did not say them.
func backendWarnings(d *admin.BackendDetail) []string {
	warnings := append([]string(nil), d.Warnings...)
	mentions := func(s string) bool {
		for _, w := range warnings {
			if strings.Contains(strings.ToLower(w), s) {
				return true
			}
		}
		return false
	}
	if strings.HasPrefix(d.Upstream, "http://") && !mentions("http") {
		warnings = append(warnings, "the upstream is plain http: the credential crosses the network unencrypted")
	}
	if d.NoScrub && !mentions("scrub") {
		warnings = append(warnings, "scrubbing is off: a backend that reflects request headers hands the credential to the agent")
	}
	return warnings
}

func injectSummary(b *store.Backend) string {
	switch b.Inject {
	case store.InjectHeader:
		if b.Prefix != "" {
			return fmt.Sprintf("header %s (prefix %q)", b.Header, b.Prefix)
		}
		return "header " + b.Header
	case store.InjectQuery:
		return "query " + b.QueryParam
	case store.InjectBasic:
		if b.BasicUser != "" {
			return "basic user " + b.BasicUser
		}
		return "basic"
	}
	return string(b.Inject)
}

func upstreamSummary(b *store.Backend) string {
	if b.Upstream == "" {
		return "the requested host, port 443"
	}
	return b.Upstream
}

func (a *app) newBackendRotateCmd() *cobra.Command {
	var src secretSource
	cmd := &cobra.Command{
		Use:               "rotate NAME (--secret-stdin | --secret-file FILE | --secret-env VAR)",
		Short:             "Replace a backend's credential with a new version",
		Long:              "Store a new credential version for a backend. The next request uses it; the old version is never used again.",
		Args:              chainArgs(refuseSecretFlags, exactArgs("NAME")),
		ValidArgsFunction: a.completeArgs(backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Whether a short secret may be stored depends on the
			// backend's scrubbing.
			scrubOff := func() (bool, error) {
				d, err := a.client().Backend(cmd.Context(), args[0])
				if err != nil {
					return false, err
				}
				return d.NoScrub, nil
			}
			secret, err := src.read(cmd, a.getenv, scrubOff)
			if err != nil {
				return err
			}
			b, err := a.client().RotateBackend(cmd.Context(), args[0], secret)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), b)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated backend %s: credential version %d, set %s\n", b.Name, b.CredentialVersion, fmtTime(b.CredentialSetAt))
			return nil
		},
	}
	addSecretFlags(cmd, &src)
	return cmd
}

func (a *app) newBackendUpdateCmd() *cobra.Command {
	var f backendAddFlags
	modes := make([]string, len(store.InjectModes))
	for i, m := range store.InjectModes {
		modes[i] = string(m)
	}
	cmd := &cobra.Command{
		Use:   "update NAME [any flag of backend add but the secret]",
		Short: "Change any of a backend's settings in one atomic write (its credential: see rotate)",
		Long: `Change any of a backend's settings: hosts, upstream and its CA, the inject
mode and its options, OAuth2 settings, limits, timeout and scrubbing, in one
atomic write that keeps its grants, tokens and credential versions. Only the
flags given change; --host replaces the whole host list. Changing --inject
clears the old mode's options that are not given again. It prints what
changed. The credential itself changes with agw backend rotate.`,
		Example: `  agw backend update hr --upstream https://10.0.0.6:8443 --upstream-ca hr-ca.pem
  agw backend update crm --host crm.corp.net --host *.crm.corp.net
  agw backend update maps --inject header --header x-api-key`,
		Args:              chainArgs(refuseSecretFlags, exactArgs("NAME")),
		ValidArgsFunction: a.completeArgs(backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.update(cmd)
			if err != nil {
				return err
			}
			before, err := a.client().Backend(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			b, err := a.client().UpdateBackend(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), b)
			}
			changes := backendChanges(&before.Backend, b)
			if len(changes) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "backend %s unchanged: it already had those settings\n", b.Name)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "updated backend %s:\n", b.Name)
			for _, c := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", c)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.hosts, "host", nil, "`HOST` names agents call; replaces the list; repeat for several")
	fl.StringVar(&f.upstream, "upstream", "", "forward to `URL` (\"\" for the requested host on port 443)")
	fl.StringVar(&f.upstreamCAFile, "upstream-ca", "", "PEM `FILE` of extra CA certificates trusted for the upstream (\"\" for none)")
	fl.BoolVar(&f.allowPlainHTTP, "allow-plain-http", false, "allow an http:// upstream")
	fl.Var(newEnumValue(&f.inject, "", modes...), "inject", "how the credential is sent: "+strings.Join(modes, ", "))
	fl.StringVar(&f.header, "header", "", "header mode: header `NAME`")
	fl.StringVar(&f.prefix, "prefix", "", "header mode: text before the credential")
	fl.StringVar(&f.queryParam, "query-param", "", "query mode: query parameter `NAME`")
	fl.StringVar(&f.basicUser, "basic-user", "", "basic mode: the Basic-auth `USER`")
	fl.StringVar(&f.tokenURL, "token-url", "", "oauth2 mode: the token endpoint `URL`")
	fl.StringVar(&f.clientID, "client-id", "", "oauth2 mode: the client `ID`")
	fl.StringSliceVar(&f.scopes, "scope", nil, "oauth2 mode: a `SCOPE` to request; replaces the list")
	fl.StringArrayVar(&f.tokenParams, "token-param", nil, "oauth2 mode: extra token request parameter `k=v`; replaces the set")
	fl.Var(rateValue{&f.rate}, "rate", "rate limit across all agents: N/s, N/m or N/h (\"\" for unlimited)")
	fl.IntVar(&f.burst, "burst", 0, "requests allowed at once above the rate")
	fl.Var(durationValue{&f.timeout}, "timeout", "wait at most `DUR` for the upstream's response headers (0: the gateway's default)")
	fl.BoolVar(&f.noScrub, "no-scrub", false, "turn off (true) or on (false) the redaction of reflected credentials")
	addRefusedSecretFlags(cmd)
	return cmd
}

// update is the request for the flags given on `backend update`.
func (f *backendAddFlags) update(cmd *cobra.Command) (admin.UpdateBackendRequest, error) {
	var req admin.UpdateBackendRequest
	fl := cmd.Flags()
	str := func(name string, v string) *string {
		if fl.Changed(name) {
			return &v
		}
		return nil
	}
	n := 0
	fl.Visit(func(f *pflag.Flag) {
		if cmd.InheritedFlags().Lookup(f.Name) == nil {
			n++
		}
	})
	if n == 0 {
		return req, usagef(cmd, "nothing to update: give at least one setting to change (see agw backend update --help)")
	}
	if fl.Changed("host") {
		if len(f.hosts) == 0 {
			return req, usagef(cmd, "--host needs at least one host name")
		}
		req.Hosts = f.hosts
	}
	req.Upstream = str("upstream", f.upstream)
	if fl.Changed("upstream-ca") {
		ca := ""
		if f.upstreamCAFile != "" {
			pem, err := os.ReadFile(f.upstreamCAFile)
			if err != nil {
				return req, fmt.Errorf("read --upstream-ca: %w", err)
			}
			ca = string(pem)
		}
		req.UpstreamCA = &ca
	}
	if fl.Changed("allow-plain-http") {
		req.AllowPlainHTTP = &f.allowPlainHTTP
	}
	if fl.Changed("inject") {
		m := store.InjectMode(f.inject)
		req.Inject = &m
	}
	req.Header, req.Prefix = str("header", f.header), str("prefix", f.prefix)
	req.QueryParam, req.BasicUser = str("query-param", f.queryParam), str("basic-user", f.basicUser)
	if fl.Changed("token-url") || fl.Changed("client-id") || fl.Changed("scope") || fl.Changed("token-param") {
		o := &store.OAuth2{TokenURL: f.tokenURL, ClientID: f.clientID}
		if fl.Changed("scope") {
			o.Scopes = append([]string{}, f.scopes...)
		}
		if fl.Changed("token-param") {
			o.Params = map[string]string{}
			for _, kv := range f.tokenParams {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return req, usagef(cmd, "invalid --token-param %q: use key=value", kv)
				}
				o.Params[k] = v
			}
		}
		req.OAuth2 = o
	}
	req.Rate = str("rate", f.rate)
	if fl.Changed("burst") {
		req.Burst = &f.burst
	}
	if fl.Changed("timeout") {
		d := store.Duration(f.timeout)
		req.Timeout = &d
	}
	if fl.Changed("no-scrub") {
		req.NoScrub = &f.noScrub
	}
	return req, nil
}

// backendChanges lists what differs between two versions of a backend, as
// "field: old → new" lines; a CA bundle is shown by size, never in full.
func backendChanges(a, b *store.Backend) []string {
	var out []string
	diff := func(field, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %s → %s", field, orDash(x), orDash(y)))
		}
	}
	diff("hosts", strings.Join(a.Hosts, " "), strings.Join(b.Hosts, " "))
	diff("upstream", a.Upstream, b.Upstream)
	caDesc := func(s string) string {
		if s == "" {
			return ""
		}
		return fmt.Sprintf("%d bytes of PEM", len(s))
	}
	if a.UpstreamCA != b.UpstreamCA {
		out = append(out, fmt.Sprintf("upstream CA: %s → %s", orDash(caDesc(a.UpstreamCA)), orDash(caDesc(b.UpstreamCA))))
	}
	diff("allow plain http", fmt.Sprint(a.AllowPlainHTTP), fmt.Sprint(b.AllowPlainHTTP))
	diff("inject", string(a.Inject), string(b.Inject))
	diff("header", a.Header, b.Header)
	diff("prefix", a.Prefix, b.Prefix)
	diff("query param", a.QueryParam, b.QueryParam)
	diff("basic user", a.BasicUser, b.BasicUser)
	oauth := func(o *store.OAuth2) string {
		if o == nil {
			return ""
		}
		return fmt.Sprintf("%s client %s scopes %s", o.TokenURL, o.ClientID, strings.Join(o.Scopes, ","))
	}
	diff("oauth2", oauth(a.OAuth2), oauth(b.OAuth2))
	diff("rate", a.Rate, b.Rate)
	diff("burst", fmt.Sprint(a.Burst), fmt.Sprint(b.Burst))
	diff("timeout", a.Timeout.Std().String(), b.Timeout.Std().String())
	diff("scrub", fmt.Sprint(!a.NoScrub), fmt.Sprint(!b.NoScrub))
	return out
}

func (a *app) newBackendRemoveCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "remove NAME [--yes]",
		Aliases: []string{"rm"},
		Short:   "Remove a backend with its credentials and every grant to it",
		Long: `Remove a backend, its credentials and every grant to it. On a terminal it lists
the grants that go with it and asks; elsewhere (a script, a pipe) it needs
--yes.`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeArgs(backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client()
			if !yes {
				in, ok := cmd.InOrStdin().(*os.File)
				if !ok || !term.IsTerminal(in.Fd()) {
					return usagef(cmd, "removing backend %s deletes its credentials and every grant to it: pass --yes to confirm", args[0])
				}
				d, err := c.Backend(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				w := cmd.ErrOrStderr()
				if len(d.Grants) == 0 {
					fmt.Fprintf(w, "backend %s has no grants.\n", args[0])
				} else {
					fmt.Fprintf(w, "these %d grants go with backend %s:\n", len(d.Grants), args[0])
					for _, g := range d.Grants {
						m, p := fmtGrantScope(g)
						fmt.Fprintf(w, "  %s: methods %s, paths %s\n", g.Agent, m, p)
					}
				}
				fmt.Fprintf(w, "remove backend %s, its credentials and these grants? [y/N] ", args[0])
				answer, _ := bufio.NewReader(in).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return &exitCodeError{code: exitError, msg: "not removed"}
				}
			}
			if err := c.RemoveBackend(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), removed{Removed: "backend", Name: args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed backend %s, its credentials and its grants\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "remove without asking")
	return cmd
}
