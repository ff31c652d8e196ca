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

// The timeout sent by stop/restart when --timeout is not given. Like lxc we
// send -1 ("wait as long as it takes"); the server applies its own policy.
const defaultStopTimeout = -1

func newStartCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "start [REMOTE:]NAME...",
		Short: "Start instances",
		Args:  rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.forEach(args, func(name string) error {
				return a.start(cmd.Context(), name)
			})
		},
	}
}

func newStopCmd(a *app) *cobra.Command {
	var force bool
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [REMOTE:]NAME...",
		Short: "Stop instances",
		Args:  rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.InstanceStatePut{Action: "stop", Timeout: timeout, Force: force}
			return a.forEach(args, func(name string) error {
				return a.changeState(cmd.Context(), name, req)
			})
		},
	}

	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the instance to stop")
	cmd.Flags().IntVar(&timeout, "timeout", defaultStopTimeout, "Time to wait for the instance to shut down cleanly (-1: as long as it takes)")

	return cmd
}

func newRestartCmd(a *app) *cobra.Command {
	var force bool
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [REMOTE:]NAME...",
		Short: "Restart instances",
		Args:  rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.InstanceStatePut{Action: "restart", Timeout: timeout, Force: force}
			return a.forEach(args, func(name string) error {
				return a.changeState(cmd.Context(), name, req)
			})
		},
	}

	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the instance to stop")
	cmd.Flags().IntVar(&timeout, "timeout", defaultStopTimeout, "Time to wait for the instance to shut down cleanly (-1: as long as it takes)")

	return cmd
}

func newPauseCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "pause [REMOTE:]NAME...",
		Aliases: []string{"freeze"},
		Short:   "Pause (freeze) instances",
		Args:    rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.forEach(args, func(name string) error {
				return a.changeState(cmd.Context(), name, api.InstanceStatePut{Action: "freeze", Timeout: -1})
			})
		},
	}
}

func newResumeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "resume [REMOTE:]NAME...",
		Aliases: []string{"unfreeze"},
		Short:   "Resume (unfreeze) paused instances",
		Args:    rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.forEach(args, func(name string) error {
				return a.changeState(cmd.Context(), name, api.InstanceStatePut{Action: "unfreeze", Timeout: -1})
			})
		},
	}
}

// servedByBerthd is client.Client.ServedByBerthd; tests replace it.
var servedByBerthd = (*client.Client).ServedByBerthd

// start mirrors lxc: a frozen instance is unfrozen, a stateful one restored. Where the
// remote's socket is berthd's (the kernel names the process listening there), it
// asks for the start at once: berthd refuses a stateful stop, so no instance has state to
// restore, and only a start that failed needs the instance's status (a frozen one is
// unfrozen). The request this saves is about 1.5 ms of the path from the command to
// systemd (doc/host-tuning.md). Anything else may be an LXD, which throws away the state
// of a stateful instance started without it: there the status comes first, as lxc reads
// it.
func (a *app) start(ctx context.Context, arg string) error {
	c, name, err := a.instanceTarget(arg)
	if err != nil {
		return err
	}

	if servedByBerthd(c) {
		err = setState(ctx, c, name, api.InstanceStatePut{Action: "start"})
		if err == nil || ctx.Err() != nil {
			return err
		}

		inst, _, gerr := c.GetInstance(ctx, name)
		if gerr != nil || inst.StatusCode != api.Frozen {
			return err
		}

		return setState(ctx, c, name, api.InstanceStatePut{Action: "unfreeze", Timeout: -1})
	}

	inst, _, err := c.GetInstance(ctx, name)
	if err != nil {
		return err
	}

	req := api.InstanceStatePut{Action: "start", Stateful: inst.Stateful}
	if inst.StatusCode == api.Frozen {
		req = api.InstanceStatePut{Action: "unfreeze", Timeout: -1}
	}

	return setState(ctx, c, name, req)
}

func (a *app) changeState(ctx context.Context, arg string, req api.InstanceStatePut) error {
	c, name, err := a.instanceTarget(arg)
	if err != nil {
		return err
	}

	return setState(ctx, c, name, req)
}

// setState changes the state of instance name on c and waits.
func setState(ctx context.Context, c *client.Client, name string, req api.InstanceStatePut) error {
	op, err := c.ChangeInstanceState(ctx, name, req)
	if err != nil {
		return err
	}

	return op.Wait(ctx)
}

// forEach runs fn for every name, going on after failures. With one name the
// error is returned as is; with several each is prefixed by its name.
func (a *app) forEach(names []string, fn func(name string) error) error {
	if len(names) == 1 {
		return fn(names[0])
	}

	var msgs []string
	for _, n := range names {
		err := fn(n)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}

			msgs = append(msgs, fmt.Sprintf("%s: %v", n, err))
		}
	}

	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}

	return nil
}
