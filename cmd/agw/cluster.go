package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/crypto"
)

// clusterInitResult is `agw cluster init -o json`.
type clusterInitResult struct {
	Identity  string `json:"identity"`
	Recipient string `json:"recipient"`
}

func (a *app) newClusterCmd() *cobra.Command {
	return newGroupCmd("cluster", "Set up cluster mode (several agw serve replicas on one PostgreSQL database)",
		a.newClusterInitCmd(),
	)
}

func (a *app) newClusterInitCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the cluster identity every replica needs (an age key file, 0600)",
		Long: `Create the cluster identity: the age key that seals every credential and
the CA key in the cluster's database. The database alone reveals nothing
without it. Copy the file to every replica host (mode 0600, owned by the agw
user, or as a systemd credential named cluster-identity) and pass
--cluster-identity FILE to agw serve --store postgres://...

The file is created once and never overwritten: losing it loses every
sealed credential, so keep a copy where your other secrets are kept.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return usagef(cmd, "give --identity FILE: where to write the cluster identity")
			}
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s already exists; the cluster identity is never overwritten (move it away first if you really mean to start a new cluster)", path)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			k, err := crypto.NewKeyring()
			if err != nil {
				return err
			}
			if err := k.Save(path); err != nil {
				return fmt.Errorf("write the cluster identity: %w", err)
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), clusterInitResult{Identity: path, Recipient: k.Recipient()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created the cluster identity %s (recipient %s)\n", path, k.Recipient())
			fmt.Fprintln(cmd.OutOrStdout(), "next: copy it to every replica (0600) and run agw serve --store postgres://... --cluster-identity", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "identity", "", "write the identity to `FILE`")
	return cmd
}
