package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/daemon"
)

// clusterInitResult is `agw cluster init -o json`.
type clusterInitResult struct {
	Identity  string `json:"identity"`
	Recipient string `json:"recipient"`
}

func (a *app) newClusterCmd() *cobra.Command {
	return newGroupCmd("cluster", "Set up cluster mode (several agw serve replicas on one PostgreSQL database)",
		a.newClusterInitCmd(),
		a.newClusterMigrateCmd(),
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

func (a *app) newClusterMigrateCmd() *cobra.Command {
	var from, to, toFile, identity, replica string
	var force bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Copy a stopped single-node installation into a cluster database",
		Long: `Copy a single-node installation (its daemon stopped) into a cluster
database: backends with their current credentials re-sealed to the cluster
identity, agents, grants, token hashes (tokens keep working), IdPs,
pass-through hosts, the CA (agents keep trusting it) and the audit trail,
whose chain is verified before the copy and the copy's after it. A
database that already holds a configuration is refused unless --force.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usagef(cmd, "give --from-data-dir DIR: the installation to copy")
			}
			url, err := secretURL("to", to, toFile, "AGW_STORE", "postgres://")
			if err != nil || url == "" {
				return usagef(cmd, "give the cluster database with --to URL, --to-file FILE or $AGW_STORE")
			}
			rep, err := daemon.MigrateToCluster(cmd.Context(), daemon.MigrateConfig{
				DataDir: from, StoreURL: url, ClusterIdentity: identity, ReplicaID: replica, Force: force,
			})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d backends, %d agents, %d grants, %d tokens, %d idps, %d pass-through hosts and the CA\n",
				rep.Backends, rep.Agents, rep.Grants, rep.Tokens, rep.IdPs, rep.Passthrough)
			fmt.Fprintf(cmd.OutOrStdout(), "audit trail: %d records verified before, copied as replica %s's chain, %d verified after\n",
				rep.AuditVerifiedBefore, rep.Replica, rep.AuditVerifiedAfter)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from-data-dir", "", "the single-node data `DIR` to copy (its daemon stopped)")
	fl.StringVar(&to, "to", "", "the cluster database `URL` (postgres://...; with a password, use --to-file or $AGW_STORE)")
	fl.StringVar(&toFile, "to-file", "", "read the cluster database URL from `FILE`")
	fl.StringVar(&identity, "cluster-identity", "", "the cluster identity `FILE` to re-seal to")
	fl.StringVar(&replica, "replica-id", "", "the replica `NAME` whose chain the copied audit records form (default the host name)")
	fl.BoolVar(&force, "force", false, "copy into a database that already holds a configuration")
	return cmd
}
