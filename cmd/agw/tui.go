package main

import (
	"os"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/tui"
)

func (a *app) newTUICmd() *cobra.Command {
	var noColor bool
	c := &cobra.Command{
		Use:   "tui",
		Short: "Manage backends, agents, tokens and grants, and watch the audit stream, in a terminal UI",
		Long: `Open the interactive terminal UI. It talks to the daemon over the admin socket,
like every other command; an unreachable daemon is shown inside it and retried.
NO_COLOR in the environment turns colour off.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{noJSON: "it is an interactive terminal UI; the other commands print the same data as JSON"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTUI(cmd, noColor)
		},
	}
	c.Flags().BoolVar(&noColor, "no-color", false, "draw without colour (also NO_COLOR)")
	return c
}

func (a *app) runTUI(cmd *cobra.Command, noColor bool) error {
	return tui.Run(cmd.Context(), a.client(), tui.Options{NoColor: noColor, Version: version})
}

// onTerminal reports whether both standard input and output are terminals,
// so bare `agw` opens the TUI for a person and prints help for a script.
func onTerminal() bool {
	return term.IsTerminal(os.Stdin.Fd()) && term.IsTerminal(os.Stdout.Fd())
}
