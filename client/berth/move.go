package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/shared/api"
)

// newMoveCmd is lxc's `move OLD NEW`: a rename on the same server; between servers a
// migration of the stopped instance (it keeps its identity: uuid, MAC addresses), then
// the source's deletion once the target has it.
func newMoveCmd(a *app) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:     "move [REMOTE:]OLD [[REMOTE:]NEW]",
		Aliases: []string{"mv", "rename"},
		Short:   "Rename a stopped instance, or move it to another server",
		Args:    rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if target != "" {
				return moveToMember(cmd, a, args, target)
			}

			if len(args) != 2 {
				return fmt.Errorf("move needs the new name or server (or --target)")
			}

			rs, from, rd, to, err := a.copyRemotes(args[0], args[1])
			if err != nil {
				return err
			}

			c, err := a.remoteClient(rs)
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			if rs != rd {
				inst, _, err := c.GetInstance(ctx, from)
				if err != nil {
					return err
				}

				if inst.StatusCode != api.Stopped {
					return fmt.Errorf("instance %q is running: stop it before moving it to another server", from)
				}

				if to == "" {
					to = from
				}

				put := inst.InstancePut
				delete(put.Config, "volatile.last_state.power")
				err = a.copyBetween(ctx, rs, from, rd, to, put, false, false)
				if err != nil {
					return err
				}

				op, err := c.DeleteInstance(ctx, from)
				if err != nil {
					return err
				}

				return op.Wait(ctx)
			}

			op, err := c.RenameInstance(ctx, from, to)
			if err != nil {
				return err
			}

			return op.Wait(ctx)
		},
	}

	cmd.Flags().StringVar(&target, "target", "", "Move the stopped instance to this cluster member (lxc move --target)")
	return cmd
}

// moveToMember is move --target: to another member of the same cluster, renamed when
// a new name is given.
func moveToMember(cmd *cobra.Command, a *app, args []string, member string) error {
	to := ""
	if len(args) == 2 {
		rs, from, rd, dst, err := a.copyRemotes(args[0], args[1])
		if err != nil {
			return err
		}

		if rs != rd {
			return fmt.Errorf("--target moves within one cluster: %q and %q are different remotes", rs, rd)
		}

		if dst != from {
			to = dst
		}
	}

	c, name, err := a.instanceTarget(args[0])
	if err != nil {
		return err
	}

	op, err := c.MoveInstanceToMember(cmd.Context(), name, to, member)
	if err != nil {
		return err
	}

	return op.Wait(cmd.Context())
}
