package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/shared/api"
)

func newSnapshotCmd(a *app) *cobra.Command {
	var reuse, noExpiry bool
	cmd := &cobra.Command{
		Use:   "snapshot [REMOTE:]NAME [SNAPSHOT]",
		Short: "Create instance snapshots (snap0, snap1, … when no name is given)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			req := api.InstanceSnapshotsPost{}
			if len(args) == 2 {
				req.Name = args[1]
			}

			if noExpiry {
				req.ExpiresAt = &time.Time{}
			}

			if reuse && req.Name != "" {
				if _, err := c.GetInstanceSnapshot(ctx, name, req.Name); err == nil {
					err := a.deleteSnapshot(ctx, args[0], req.Name)
					if err != nil {
						return err
					}
				}
			}

			op, err := c.CreateInstanceSnapshot(ctx, name, req)
			if err != nil {
				return err
			}

			return op.WaitOrCancel(ctx)
		},
	}

	cmd.Flags().BoolVar(&reuse, "reuse", false, "If the snapshot name already exists, delete and create a new one")
	cmd.Flags().BoolVar(&noExpiry, "no-expiry", false, "Ignore any configured auto-expiry for the instance")

	return cmd
}

func newRestoreCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "restore [REMOTE:]NAME SNAPSHOT",
		Short: "Restore instances from snapshots",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			op, err := c.RestoreInstanceSnapshot(cmd.Context(), name, args[1])
			if err != nil {
				return err
			}

			return op.Wait(cmd.Context())
		},
	}
}

// deleteSnapshot serves `berth delete NAME/SNAP`.
func (a *app) deleteSnapshot(ctx context.Context, name, snap string) error {
	c, name, err := a.instanceTarget(name)
	if err != nil {
		return err
	}

	op, err := c.DeleteInstanceSnapshot(ctx, name, snap)
	if err != nil {
		return err
	}

	return op.Wait(ctx)
}

// splitSnapshot splits NAME/SNAP; ok is false for a plain instance name.
func splitSnapshot(arg string) (string, string, bool, error) {
	name, snap, ok := strings.Cut(arg, "/")
	if ok && (name == "" || snap == "") {
		return "", "", false, fmt.Errorf("invalid snapshot %q: want NAME/SNAPSHOT", arg)
	}

	return name, snap, ok, nil
}
