package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) newCACmd() *cobra.Command {
	return newGroupCmd("ca", "The internal CA agents must trust",
		&cobra.Command{
			Use:   "export",
			Short: "Print the CA certificate (PEM) to install where agents run",
			Example: `  agw ca export > agw-ca.pem
  # then: NODE_EXTRA_CA_CERTS=agw-ca.pem, SSL_CERT_FILE, or the system trust store`,
			Args: exactArgs(),
			RunE: func(cmd *cobra.Command, _ []string) error {
				pem, err := a.client().CA(cmd.Context())
				if err != nil {
					return err
				}
				if !strings.HasSuffix(pem, "\n") {
					pem += "\n"
				}
				_, err = fmt.Fprint(cmd.OutOrStdout(), pem)
				return err
			},
		},
	)
}
