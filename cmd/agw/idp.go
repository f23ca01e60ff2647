package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/store"
)

func (a *app) newIdPCmd() *cobra.Command {
	return newGroupCmd("idp", "Trust OpenID Connect issuers whose access tokens identify agents",
		a.newIdPAddCmd(),
		a.newIdPListCmd(),
		a.newIdPRemoveCmd(),
	)
}

func (a *app) newIdPAddCmd() *cobra.Command {
	var p store.IdP
	cmd := &cobra.Command{
		Use:   "add NAME --issuer URL --audience AUD [--claim CLAIM]",
		Short: "Trust an identity provider's access tokens",
		Long: `Trust access tokens from an OpenID Connect issuer. A token must be signed by the
issuer's keys and carry --audience (the audience your IdP issues for the
gateway, not the backend's); the --claim value names the agent, which is
registered with agw agent add NAME --idp IDP --subject VALUE.`,
		Example: `  agw idp add corp --issuer https://login.example.com/oauth2/default --audience api://agw --claim cid`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if p.Issuer == "" {
				return usagef(cmd, "--issuer is required: the issuer URL your IdP puts in tokens")
			}
			if p.Audience == "" {
				return usagef(cmd, "--audience is required: the audience your IdP puts in tokens for the gateway")
			}
			out, err := a.client().AddIdP(cmd.Context(), p)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added identity provider %s (%s, claim %s)\n", out.Name, out.Issuer, out.Claim)
			fmt.Fprintf(cmd.OutOrStdout(), "next: agw agent add NAME --idp %s --subject VALUE\n", out.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&p.Issuer, "issuer", "", "the issuer `URL` (https)")
	fl.StringVar(&p.Audience, "audience", "", "the audience `AUD` tokens for the gateway carry")
	fl.Var(newEnumValue(&p.Claim, "sub", store.IdPClaims...), "claim", "the claim that names the agent: "+strings.Join(store.IdPClaims, ", "))
	_ = cmd.RegisterFlagCompletionFunc("claim", fixedCompletion(store.IdPClaims...))
	return cmd
}

func (a *app) newIdPListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List identity providers",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := a.client().IdPs(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), nonNil(ps))
			}
			tw := newTable(cmd.OutOrStdout())
			row(tw, "NAME", "ISSUER", "AUDIENCE", "CLAIM", "CREATED")
			for _, p := range ps {
				row(tw, p.Name, p.Issuer, p.Audience, p.Claim, fmtTime(p.CreatedAt))
			}
			return tw.Flush()
		},
	}
}

func (a *app) newIdPRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "remove NAME",
		Aliases:           []string{"rm"},
		Short:             "Stop trusting an identity provider (refused while agents use it)",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeArgs(idpNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.client().RemoveIdP(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), removed{Removed: "idp", Name: args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed identity provider %s\n", args[0])
			return nil
		},
	}
}
