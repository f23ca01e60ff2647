package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func (a *app) newTokenCmd() *cobra.Command {
	return newGroupCmd("token", "Mint and revoke the gateway tokens agents authenticate with",
		a.newTokenMintCmd(),
		a.newTokenListCmd(),
		a.newTokenRevokeCmd(),
	)
}

func (a *app) newTokenMintCmd() *cobra.Command {
	var (
		ttl   time.Duration
		label string
	)
	cmd := &cobra.Command{
		Use:   "mint AGENT [--ttl DUR] [--label L]",
		Short: "Mint a gateway token for an agent and print it once",
		Long: `Mint a gateway token for AGENT. The token is printed once, alone on stdout, so
it can be piped into a secret store; agw keeps only its hash and can never show
it again. The token id (for list and revoke) goes to stderr.`,
		Example:           `  agw token mint support-bot --ttl 30d --label prod > /run/secrets/agw-token`,
		Args:              exactArgs("AGENT"),
		ValidArgsFunction: a.completeArgs(agentNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := a.client().MintToken(cmd.Context(), admin.MintRequest{Agent: args[0], TTL: store.Duration(ttl), Label: label})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), m)
			}
			if _, err := fmt.Fprintln(cmd.OutOrStdout(), m.Value); err != nil {
				return err
			}
			expiry := "never expires"
			if !m.ExpiresAt.IsZero() {
				expiry = "expires " + fmtTime(m.ExpiresAt)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "agw: token %s for agent %s (%s): store it now; it cannot be shown again\n", m.ID, m.Agent, expiry)
			return nil
		},
	}
	cmd.Flags().Var(durationValue{&ttl}, "ttl", "the token expires after `DUR`, like 12h or 30d (default never)")
	cmd.Flags().StringVar(&label, "label", "", "a note to tell tokens apart, like the host it is deployed to")
	return cmd
}

func (a *app) newTokenListCmd() *cobra.Command {
	var agent string
	cmd := &cobra.Command{
		Use:     "list [--agent A]",
		Aliases: []string{"ls"},
		Short:   "List tokens and their state (never their values)",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := a.client().Tokens(cmd.Context(), agent)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), nonNil(ts))
			}
			return printTokens(cmd.OutOrStdout(), ts, a.now(), true)
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "only the tokens of agent `A`")
	_ = cmd.RegisterFlagCompletionFunc("agent", a.completeFlag(agentNames))
	return cmd
}

// printTokens writes a token table; withAgent adds the agent column.
func printTokens(w io.Writer, ts []store.Token, now time.Time, withAgent bool) error {
	tw := newTable(w)
	head := []string{"ID", "AGENT", "LABEL", "CREATED", "EXPIRES", "STATE"}
	if !withAgent {
		head = append(head[:1], head[2:]...)
	}
	row(tw, head...)
	for _, t := range ts {
		cols := []string{t.ID, t.Agent, orDash(t.Label), fmtTime(t.CreatedAt), fmtExpiry(t.ExpiresAt), tokenState(t, now)}
		if !withAgent {
			cols = append(cols[:1], cols[2:]...)
		}
		row(tw, cols...)
	}
	return tw.Flush()
}

func (a *app) newTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "revoke TOKEN_ID",
		Short:             "Revoke a token; the next request with it is refused",
		Args:              exactArgs("TOKEN_ID"),
		ValidArgsFunction: a.completeArgs(a.activeTokenIDs),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.client().RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s of agent %s\n", t.ID, t.Agent)
			return nil
		},
	}
}
