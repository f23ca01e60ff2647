package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// initResult is `agw init -o json`.
type initResult struct {
	DataDir string `json:"data_dir"`
	Created bool   `json:"created"`
}

func (a *app) newInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the data directory: identity, CA and store",
		Long: `Create the data directory's age identity, internal CA and store, if they do not
exist yet. 'agw serve' does this by itself on an empty directory; run 'agw init'
to prepare a directory before the daemon first starts: 'agw ca export' reads
the CA certificate from it while no daemon runs.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := a.dataDirPath()
			created, err := a.initDir(dir)
			if err != nil {
				return fmt.Errorf("initialise %s: %w", dir, err)
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), initResult{DataDir: dir, Created: created})
			}
			if created {
				fmt.Fprintf(cmd.OutOrStdout(), "initialised %s: created the identity, the CA and the store\n", dir)
				fmt.Fprintln(cmd.OutOrStdout(), "next: agw ca export > agw-ca.pem for your agents to trust (it works before the daemon runs), then agw serve")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is already initialised; nothing changed\n", dir)
			return nil
		},
	}
}
