package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/shared/api"
)

// errInstanceRunning is lxc's message for deleting a running instance
// (run capitalises the first letter when printing).
var errInstanceRunning = errors.New("the instance is currently running, stop it first or pass --force")

func newDeleteCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete [REMOTE:]NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete instances",
		Args:    rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.forEach(args, func(name string) error {
				return a.deleteInstance(cmd.Context(), name, force)
			})
		},
	}

	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of running instances")

	return cmd
}

func (a *app) deleteInstance(ctx context.Context, arg string, force bool) error {
	if base, snap, isSnap, err := splitSnapshot(arg); err != nil || isSnap {
		if err != nil {
			return err
		}

		return a.deleteSnapshot(ctx, base, snap)
	}

	c, name, err := a.instanceTarget(arg)
	if err != nil {
		return err
	}

	inst, _, err := c.GetInstance(ctx, name)
	if err != nil {
		return err
	}

	// Like lxc: anything but Stopped (or an unset code) counts as running.
	if inst.StatusCode != 0 && inst.StatusCode != api.Stopped {
		if !force {
			return errInstanceRunning
		}

		err = a.changeState(ctx, arg, api.InstanceStatePut{Action: "stop", Timeout: -1, Force: true})
		if err != nil {
			return err
		}

		// The server deletes ephemeral instances itself when they stop.
		if inst.Ephemeral {
			return nil
		}
	}

	op, err := c.DeleteInstance(ctx, name)
	if err != nil {
		return err
	}

	return op.Wait(ctx)
}
