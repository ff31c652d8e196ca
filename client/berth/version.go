package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
)

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show client and server versions",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.printf("Client version: %s\n", client.Version)

			server := "unreachable"
			c, err := a.client()
			if err == nil {
				s, _, err := c.GetServer(cmd.Context())
				if err == nil {
					server = s.Environment.ServerVersion
				}
			}

			a.printf("Server version: %s\n", server)

			return nil
		},
	}
}
