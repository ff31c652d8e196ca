package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// The cluster group's evacuate and restore, after the subcommands registered before.
func init() {
	prev := clusterMemberCmds
	clusterMemberCmds = func(a *app) []*cobra.Command { return append(prev(a), clusterEvacuateCmds(a)...) }
}

// clusterEvacuateCmds are `cluster evacuate` and `cluster restore` (lxc 5.0's).
func clusterEvacuateCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newClusterStateCmd(a, "evacuate"), newClusterStateCmd(a, "restore")}
}

func newClusterStateCmd(a *app, action string) *cobra.Command {
	var force bool
	var mode string
	short := "Evacuate a cluster member: stop or move its instances and keep new ones off it"
	if action == "restore" {
		short = "Restore an evacuated cluster member: move back and start the instances its evacuation stopped or moved"
	}

	cmd := &cobra.Command{
		Use:   action + " [REMOTE:]MEMBER",
		Short: short,
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			if !force {
				ok, err := a.confirmAction(fmt.Sprintf("Are you sure you want to %s cluster member %q? (yes/no) [default=no]: ", action, name))
				if err != nil || !ok {
					return err
				}
			}

			req := api.ClusterMemberStatePost{Action: action, Mode: mode}
			return clusterMemberState(cmd.Context(), c, name, req)
		},
	}

	cmd.Flags().BoolVar(&force, "force", false, "Do not ask for confirmation")
	if action == "evacuate" {
		cmd.Flags().StringVar(&mode, "action-mode", "", "How to evacuate the instances: stop or migrate (default: each instance's cluster.evacuate)")
		// lxc's name for it.
		cmd.Flags().StringVar(&mode, "action", "", "Same as --action-mode")
	}

	return cmd
}

// clusterMemberState sends the evacuate/restore request and waits for its operation.
func clusterMemberState(ctx context.Context, c *client.Client, name string, req api.ClusterMemberStatePost) error {
	op, err := c.UpdateClusterMemberState(ctx, name, req)
	if err != nil {
		return err
	}

	return op.Wait(ctx)
}

// confirmAction asks question on standard input: "yes"/"y" goes on, anything else (or
// no answer) stops without an error, as lxc does.
func (a *app) confirmAction(question string) (bool, error) {
	a.printf("%s", question)
	line, err := a.readLine()
	if err != nil {
		return false, errors.New("no answer: pass --force to skip the question")
	}

	return strings.EqualFold(line, "yes") || strings.EqualFold(line, "y"), nil
}
