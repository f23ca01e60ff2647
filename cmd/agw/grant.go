package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/store"
)

func (a *app) newGrantCmd() *cobra.Command {
	return newGroupCmd("grant", "Allow agents to call backends (everything not granted is denied)",
		a.newGrantAddCmd(),
		a.newGrantListCmd(),
		a.newGrantRemoveCmd(),
	)
}

func (a *app) newGrantAddCmd() *cobra.Command {
	var g store.Grant
	cmd := &cobra.Command{
		Use:   "add AGENT BACKEND [--method M]... [--path GLOB]... [--rate N/s] [--burst N]",
		Short: "Let an agent call a backend, optionally only some methods and paths",
		Long: `Let AGENT call BACKEND. Without --method every method is allowed; without --path
every path. Path patterns match the normalised path: '*' is one segment, '**'
any number. Adding a grant that exists replaces it.`,
		Example: `  agw grant add support-bot openai
  agw grant add support-bot crm --method GET --path '/v1/tickets/**' --rate 60/m`,
		Args:              exactArgs("AGENT", "BACKEND"),
		ValidArgsFunction: a.completeArgs(agentNames, backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.Agent, g.Backend = args[0], args[1]
			out, err := a.client().PutGrant(cmd.Context(), g)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			m, p := fmtGrantScope(*out)
			fmt.Fprintf(cmd.OutOrStdout(), "granted %s → %s: methods %s, paths %s, rate %s\n",
				out.Agent, out.Backend, m, p, fmtLimit(out.Rate, out.Burst))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&g.Methods, "method", nil, "HTTP method `M` to allow, like GET; repeat for several (default every method)")
	fl.StringArrayVar(&g.Paths, "path", nil, "path pattern `GLOB` to allow, like /v1/**; repeat for several (default every path)")
	addLimitFlags(cmd, &g.Rate, &g.Burst, "for this agent on this backend")
	return cmd
}

func (a *app) newGrantListCmd() *cobra.Command {
	var agent string
	cmd := &cobra.Command{
		Use:     "list [--agent A]",
		Aliases: []string{"ls"},
		Short:   "List grants",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			gs, err := a.client().Grants(cmd.Context(), agent)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), nonNil(gs))
			}
			tw := newTable(cmd.OutOrStdout())
			row(tw, "AGENT", "BACKEND", "METHODS", "PATHS", "RATE", "CREATED")
			for _, g := range gs {
				m, p := fmtGrantScope(g)
				row(tw, g.Agent, g.Backend, m, p, fmtLimit(g.Rate, g.Burst), fmtTime(g.CreatedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "only the grants of agent `A`")
	_ = cmd.RegisterFlagCompletionFunc("agent", a.completeFlag(agentNames))
	return cmd
}

func (a *app) newGrantRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "remove AGENT BACKEND",
		Aliases:           []string{"rm"},
		Short:             "Stop an agent from calling a backend",
		Args:              exactArgs("AGENT", "BACKEND"),
		ValidArgsFunction: a.completeArgs(agentNames, backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.client().RemoveGrant(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), removed{Removed: "grant", Agent: args[0], Backend: args[1]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed the grant of %s on %s\n", args[0], args[1])
			return nil
		},
	}
}
