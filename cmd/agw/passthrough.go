package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newPassthroughCmd() *cobra.Command {
	return newGroupCmd("passthrough", "List hosts the proxy listener tunnels to without terminating TLS",
		a.newPassthroughAddCmd(),
		a.newPassthroughListCmd(),
		a.newPassthroughRemoveCmd(),
	)
}

func (a *app) newPassthroughAddCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add HOST",
		Short: "Allow plain tunnels to a host (exact, or *.base for one label under base)",
		Long: `Allow clients of the proxy listener (agw serve --proxy-listen) to open
CONNECT or SOCKS5 tunnels to HOST. agw splices such a tunnel to the real host
without terminating TLS: the client sees the host's own certificate, no
credential is injected, and the tunnel is audited as pass-through with its
byte counts. Tunnels to hosts neither registered nor listed are refused.`,
		Example: `  agw passthrough add pypi.org
  agw passthrough add '*.githubusercontent.com'`,
		Args: exactArgs("HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := a.client().AddPassthrough(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tunnels to %s now pass through (TLS not terminated, no credential injected)\n", out.Host)
			return nil
		},
	}
}

func (a *app) newPassthroughListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List pass-through hosts",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := a.client().Passthrough(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), nonNil(ps))
			}
			tw := newTable(cmd.OutOrStdout())
			row(tw, "HOST", "CREATED")
			for _, p := range ps {
				row(tw, p.Host, fmtTime(p.CreatedAt))
			}
			return tw.Flush()
		},
	}
}

func (a *app) newPassthroughRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "remove HOST",
		Aliases:           []string{"rm"},
		Short:             "Refuse tunnels to a host again",
		Args:              exactArgs("HOST"),
		ValidArgsFunction: a.completeArgs(passthroughHosts),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.client().RemovePassthrough(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOutput() {
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed pass-through host %s\n", args[0])
			return nil
		},
	}
}
