package main

import (
	"github.com/spf13/cobra"
)

// newMoveCmd is lxc's `move OLD NEW`, which renames an instance on the same server.
func newMoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "move [REMOTE:]OLD [REMOTE:]NEW",
		Aliases: []string{"mv", "rename"},
		Short:   "Rename a stopped instance",
		Args:    rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, from, to, err := a.sameRemote(args[0], args[1])
			if err != nil {
				return err
			}

			op, err := c.RenameInstance(cmd.Context(), from, to)
			if err != nil {
				return err
			}

			return op.Wait(cmd.Context())
		},
	}
}
