package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
)

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version [REMOTE:]",
		Short: "Show client and server versions",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				_, rest, err := a.parseRemote(args[0])
				if err != nil {
					return err
				}

				if rest != "" {
					return &usageError{cmd: cmd, err: fmt.Errorf("unexpected argument %q: give only REMOTE:", args[0])}
				}
			}

			a.printf("Client version: %s\n", client.Version)

			server := "unreachable"
			c, err := a.remoteOnly(cmd, args)
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
