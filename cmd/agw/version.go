package main

import (
	"runtime"

	"github.com/spf13/cobra"
)

// versionInfo is `agw version -o json`.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print agw's version, commit and build date",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			tw := newTable(cmd.OutOrStdout())
			row(tw, "version", v.Version)
			row(tw, "commit", v.Commit)
			row(tw, "date", v.Date)
			row(tw, "go", v.Go)
			return tw.Flush()
		},
	}
}
