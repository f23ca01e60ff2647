package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func (a *app) newAgentCmd() *cobra.Command {
	return newGroupCmd("agent", "Register the workloads that call backends through agw",
		a.newAgentAddCmd(),
		a.newAgentListCmd(),
		a.newAgentShowCmd(),
		a.newAgentEnableCmd("disable", true),
		a.newAgentEnableCmd("enable", false),
		a.newAgentUpdateCmd(),
		a.newAgentRemoveCmd(),
	)
}

func (a *app) newAgentAddCmd() *cobra.Command {
	var ag store.Agent
	cmd := &cobra.Command{
		Use:   "add NAME [--description D] [--idp IDP --subject VALUE]",
		Short: "Register an agent",
		Long: `Register an agent. It authenticates with gateway tokens (agw token mint), or,
with --idp and --subject, with its identity provider's access tokens whose
configured claim equals VALUE. It may call nothing until granted (agw grant add).`,
		Example: `  agw agent add support-bot --description "ticket triage"
  agw agent add etl --idp corp --subject 0oa1b2c3d4`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ag.Name = args[0]
			if (ag.IdP == "") != (ag.Subject == "") {
				return usagef(cmd, "--idp and --subject go together: the IdP and the claim value that identifies this agent")
			}
			out, err := a.client().AddAgent(cmd.Context(), ag)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added agent %s\n", out.Name)
			if out.IdP == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "next: agw grant add %s BACKEND, then agw token mint %s\n", out.Name, out.Name)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "next: agw grant add %s BACKEND\n", out.Name)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&ag.Description, "description", "", "what the agent is, for people reading lists")
	fl.StringVar(&ag.IdP, "idp", "", "identity provider whose tokens identify the agent (see agw idp add)")
	fl.StringVar(&ag.Subject, "subject", "", "the claim `VALUE` that identifies the agent in --idp's tokens")
	addLimitFlags(cmd, &ag.Rate, &ag.Burst, "across all backends")
	fl.IntVar(&ag.MaxConcurrent, "max-concurrent", 0, "requests in flight at once (default unlimited)")
	_ = cmd.RegisterFlagCompletionFunc("idp", a.completeFlag(idpNames))
	return cmd
}

func (a *app) newAgentListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List agents with their token and grant counts",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.client().Agents(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), nonNil(as))
			}
			now := a.now()
			tw := newTable(cmd.OutOrStdout())
			row(tw, "NAME", "ENABLED", "TOKENS", "GRANTS", "IDP", "LAST SEEN", "DESCRIPTION")
			for _, ag := range as {
				row(tw, ag.Name, yesNo(!ag.Disabled), fmt.Sprint(ag.Tokens), fmt.Sprint(ag.Grants),
					idpSummary(&ag.Agent), fmtAgo(ag.LastSeen, now), orDash(ag.Description))
			}
			return tw.Flush()
		},
	}
}

func (a *app) newAgentShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "show NAME",
		Short:             "Show an agent with its grants and tokens (never token values)",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeArgs(agentNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.client().Agent(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				d.Grants, d.Tokens = nonNil(d.Grants), nonNil(d.Tokens)
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return a.printAgent(cmd, d)
		},
	}
}

func (a *app) printAgent(cmd *cobra.Command, d *admin.AgentDetail) error {
	w := cmd.OutOrStdout()
	tw := newTable(w)
	row(tw, "name", d.Name)
	row(tw, "description", orDash(d.Description))
	row(tw, "enabled", yesNo(!d.Disabled))
	row(tw, "identity", idpSummary(&d.Agent))
	row(tw, "rate", fmtLimit(d.Rate, d.Burst))
	conc := "unlimited"
	if d.MaxConcurrent > 0 {
		conc = fmt.Sprint(d.MaxConcurrent)
	}
	row(tw, "max concurrent", conc)
	row(tw, "created", fmtTime(d.CreatedAt))
	row(tw, "updated", fmtTime(d.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(d.Grants) == 0 {
		fmt.Fprintf(w, "no grants: %s may call nothing yet (agw grant add %s BACKEND)\n", d.Name, d.Name)
	} else {
		tw = newTable(w)
		row(tw, "BACKEND", "METHODS", "PATHS", "RATE")
		for _, g := range d.Grants {
			m, p := fmtGrantScope(g)
			row(tw, g.Backend, m, p, fmtLimit(g.Rate, g.Burst))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if len(d.Tokens) == 0 {
		fmt.Fprintln(w, "no tokens")
		return nil
	}
	return printTokens(w, d.Tokens, a.now(), false)
}

func idpSummary(ag *store.Agent) string {
	if ag.IdP == "" {
		return "gateway tokens"
	}
	return fmt.Sprintf("%s subject %s", ag.IdP, ag.Subject)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// newAgentEnableCmd builds `agent disable` (disable true) or `agent enable`.
func (a *app) newAgentEnableCmd(use string, disable bool) *cobra.Command {
	short := "Let an agent call its granted backends again"
	if disable {
		short = "Refuse every request from an agent, keeping its grants and tokens"
	}
	return &cobra.Command{
		Use:               use + " NAME",
		Short:             short,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeArgs(agentNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := a.client().UpdateAgent(cmd.Context(), args[0], admin.UpdateAgentRequest{Disabled: &disable})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%sd agent %s\n", use, out.Name)
			return nil
		},
	}
}

func (a *app) newAgentUpdateCmd() *cobra.Command {
	var (
		description, rate    string
		burst, maxConcurrent int
	)
	cmd := &cobra.Command{
		Use:               "update NAME [--description D] [--rate N/s] [--burst N] [--max-concurrent N]",
		Short:             "Change an agent's description or limits",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeArgs(agentNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req admin.UpdateAgentRequest
			fl := cmd.Flags()
			if fl.Changed("description") {
				req.Description = &description
			}
			if fl.Changed("rate") {
				req.Rate = &rate
			}
			if fl.Changed("burst") {
				req.Burst = &burst
			}
			if fl.Changed("max-concurrent") {
				req.MaxConcurrent = &maxConcurrent
			}
			if req == (admin.UpdateAgentRequest{}) {
				return usagef(cmd, "nothing to update: give at least one of --description, --rate, --burst, --max-concurrent")
			}
			out, err := a.client().UpdateAgent(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "updated agent %s\n", out.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&description, "description", "", "what the agent is")
	fl.Var(rateValue{&rate}, "rate", "rate limit across all backends: N/s, N/m or N/h (\"\" for unlimited)")
	fl.IntVar(&burst, "burst", 0, "requests allowed at once above the rate")
	fl.IntVar(&maxConcurrent, "max-concurrent", 0, "requests in flight at once (0: unlimited)")
	return cmd
}

func (a *app) newAgentRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "remove NAME",
		Aliases:           []string{"rm"},
		Short:             "Remove an agent with its grants and tokens",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeArgs(agentNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.client().RemoveAgent(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOutput() {
				return nil // the API answers nothing; the exit status says it worked
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed agent %s, its grants and its tokens\n", args[0])
			return nil
		},
	}
}
