package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/store"
)

func (a *app) newGrantCmd() *cobra.Command {
	return newGroupCmd("grant", "Allow agents to call backends (everything not granted is denied)",
		a.newGrantAddCmd(),
		a.newGrantUpdateCmd(),
		a.newGrantListCmd(),
		a.newGrantRemoveCmd(),
	)
}

func (a *app) newGrantAddCmd() *cobra.Command {
	var (
		g                  store.Grant
		anyMethod, anyPath bool
		replace            bool
	)
	cmd := &cobra.Command{
		Use:   "add AGENT BACKEND (--method M... | --any-method) (--path GLOB... | --any-path) [--rate N/s] [--burst N] [--replace]",
		Short: "Let an agent call a backend: the methods and paths named",
		Long: `Let AGENT call BACKEND with the methods and paths named. A grant names both:
give --method (repeatable) or --any-method, and --path (repeatable) or
--any-path; nothing is allowed by default. Path patterns match the normalised
path: '*' is one segment, '**' any number.

A grant that exists is shown and left alone: --replace replaces it, and
'agw grant update' adds or removes methods and paths.`,
		Example: `  agw grant add support-bot openai --method GET --method POST --path /v1/chat/completions
  agw grant add support-bot crm --method GET --path '/v1/tickets/**' --rate 60/m
  agw grant add ops-bot status --any-method --any-path`,
		Args:              exactArgs("AGENT", "BACKEND"),
		ValidArgsFunction: a.completeArgs(agentNames, backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.Agent, g.Backend = args[0], args[1]
			switch {
			case anyMethod && len(g.Methods) > 0:
				return usagef(cmd, "give --method or --any-method, not both")
			case anyPath && len(g.Paths) > 0:
				return usagef(cmd, "give --path or --any-path, not both")
			case !anyMethod && len(g.Methods) == 0:
				return usagef(cmd, "no method given: name each with --method GET, or give --any-method to allow every method")
			case !anyPath && len(g.Paths) == 0:
				return usagef(cmd, "no path given: name each with --path '/v1/**', or give --any-path to allow every path")
			}
			if anyMethod {
				g.Methods = []string{"*"}
			}
			if anyPath {
				g.Paths = []string{"/**"}
			}
			put := a.client().PutGrant
			if replace {
				put = a.client().ReplaceGrant
			}
			out, err := put(cmd.Context(), g)
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
	fl.StringSliceVar(&g.Methods, "method", nil, "HTTP method `M` to allow, like GET; repeat for several")
	fl.BoolVar(&anyMethod, "any-method", false, "allow every method")
	fl.StringArrayVar(&g.Paths, "path", nil, "path pattern `GLOB` to allow, like /v1/**; repeat for several")
	fl.BoolVar(&anyPath, "any-path", false, "allow every path")
	fl.BoolVar(&replace, "replace", false, "replace the grant if one exists")
	addLimitFlags(cmd, &g.Rate, &g.Burst, "for this agent on this backend")
	return cmd
}

func (a *app) newGrantUpdateCmd() *cobra.Command {
	var addM, rmM, addP, rmP []string
	cmd := &cobra.Command{
		Use:   "update AGENT BACKEND [--add-method M] [--remove-method M] [--add-path GLOB] [--remove-path GLOB]",
		Short: "Add or remove methods and paths of an existing grant",
		Long: `Add or remove methods and paths of the grant of AGENT on BACKEND, keeping the
rest. Removing the last method or path is refused: remove the grant instead.`,
		Example: `  agw grant update support-bot openai --add-method DELETE --add-path '/v1/files/*'
  agw grant update support-bot openai --remove-path /v1/models`,
		Args:              exactArgs("AGENT", "BACKEND"),
		ValidArgsFunction: a.completeArgs(agentNames, backendNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(addM)+len(rmM)+len(addP)+len(rmP) == 0 {
				return usagef(cmd, "nothing to update: give --add-method, --remove-method, --add-path or --remove-path")
			}
			c := a.client()
			gs, err := c.Grants(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var g *store.Grant
			for i := range gs {
				if gs[i].Backend == args[1] {
					g = &gs[i]
				}
			}
			if g == nil {
				return fmt.Errorf("%s has no grant on %s: %w (add one with `agw grant add %s %s`)", args[0], args[1], store.ErrNotFound, args[0], args[1])
			}
			before := *g
			before.Methods, before.Paths = slices.Clone(g.Methods), slices.Clone(g.Paths)
			upper := func(ms []string) []string {
				out := make([]string, len(ms))
				for i, m := range ms {
					out[i] = strings.ToUpper(strings.TrimSpace(m))
				}
				return out
			}
			if g.Methods, err = editList(g.Methods, upper(addM), upper(rmM), "method"); err != nil {
				return usagef(cmd, "%v", err)
			}
			if g.Paths, err = editList(g.Paths, addP, rmP, "path"); err != nil {
				return usagef(cmd, "%v", err)
			}
			out, err := c.ReplaceGrant(cmd.Context(), *g)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			bm, bp := fmtGrantScope(before)
			m, p := fmtGrantScope(*out)
			fmt.Fprintf(cmd.OutOrStdout(), "updated %s → %s\n  methods %s → %s\n  paths   %s → %s\n", out.Agent, out.Backend, bm, m, bp, p)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&addM, "add-method", nil, "allow method `M` too; repeat for several")
	fl.StringSliceVar(&rmM, "remove-method", nil, "no longer allow method `M`; repeat for several")
	fl.StringArrayVar(&addP, "add-path", nil, "allow path pattern `GLOB` too; repeat for several")
	fl.StringArrayVar(&rmP, "remove-path", nil, "no longer allow path pattern `GLOB`; repeat for several")
	return cmd
}

// editList adds and removes entries; removing one that is not there, or the
// last one, is an error naming it.
func editList(list, add, remove []string, what string) ([]string, error) {
	out := slices.Clone(list)
	for _, r := range remove {
		i := slices.Index(out, r)
		if i < 0 {
			return nil, fmt.Errorf("the grant has no %s %q (it has %s)", what, r, strings.Join(list, ", "))
		}
		out = slices.Delete(out, i, i+1)
	}
	for _, v := range add {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("that removes the grant's last %s; remove the grant instead (agw grant remove)", what)
	}
	return out, nil
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
