package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// dnsFormats are the formats `agw dns export` writes.
var dnsFormats = []string{"hosts", "dnsmasq", "unbound", "coredns", "bind"}

// dnsExport is `agw dns export -o json`: the file a resolver reads, whole.
type dnsExport struct {
	Format  string `json:"format"`
	Content string `json:"content"`
}

func (a *app) newDNSCmd() *cobra.Command {
	var format string
	export := &cobra.Command{
		Use:   "export [--format hosts|dnsmasq|unbound|coredns|bind]",
		Short: "Print DNS overrides that point the registered hosts at agw",
		Long: `Print DNS overrides for every registered host, in a format your resolver reads,
for networks whose DNS is not agw's own server. With -o json, the same text
comes as {"format": ..., "content": ...}.`,
		Example: `  agw dns export --format dnsmasq > /etc/dnsmasq.d/agw.conf`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := a.client().DNSExport(cmd.Context(), format)
			if err != nil {
				return err
			}
			if out != "" && !strings.HasSuffix(out, "\n") {
				out += "\n"
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), dnsExport{Format: format, Content: out})
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
	export.Flags().Var(newEnumValue(&format, "hosts", dnsFormats...), "format", "output format: "+strings.Join(dnsFormats, ", "))
	_ = export.RegisterFlagCompletionFunc("format", fixedCompletion(dnsFormats...))
	return newGroupCmd("dns", "DNS configuration for the hosts agw intercepts", export)
}
