package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

func newCopyCmd(a *app) *cobra.Command {
	var instanceOnly, noProfiles, ephemeral, start bool
	var config, profiles []string
	cmd := &cobra.Command{
		Use:     "copy [REMOTE:]SOURCE[/SNAPSHOT] [[REMOTE:]DESTINATION]",
		Aliases: []string{"cp"},
		Short:   "Copy instances within or between servers",
		Args:    rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Without a destination only the source's remote matters.
			dstArg := args[0]
			if len(args) == 2 {
				dstArg = args[1]
			}

			rs, source, rd, dst, err := a.copyRemotes(args[0], dstArg)
			if err != nil {
				return err
			}

			c, err := a.remoteClient(rs)
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			src, snap, isSnap, err := splitSnapshot(source)
			if err != nil {
				return err
			}

			inst, _, err := c.GetInstance(ctx, src)
			if err != nil {
				return err
			}

			put := inst.InstancePut
			if isSnap {
				s, err := c.GetInstanceSnapshot(ctx, src, snap)
				if err != nil {
					return err
				}

				put = api.InstancePut{Architecture: s.Architecture, Config: s.Config, Devices: s.Devices, Ephemeral: s.Ephemeral, Profiles: s.Profiles}
			}

			// As lxc: the source's writable fields without volatile keys (but the base image).
			cfg := map[string]string{}
			for k, v := range put.Config {
				if !strings.HasPrefix(k, "volatile.") || k == "volatile.base_image" {
					cfg[k] = v
				}
			}

			for _, kv := range config {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("bad key=value pair: %q", kv)
				}

				cfg[k] = v
			}

			put.Config = cfg
			if len(profiles) > 0 {
				put.Profiles = profiles
			}

			if noProfiles {
				put.Profiles = []string{}
			}

			if ephemeral {
				put.Ephemeral = true
			}

			if rs != rd {
				if isSnap {
					return fmt.Errorf("copying a snapshot to another server is not supported")
				}

				if len(args) < 2 || dst == "" {
					dst = src
				}

				return a.copyBetween(ctx, rs, src, rd, dst, put, instanceOnly, start)
			}

			req := api.InstancesPost{
				InstancePut: put,
				Type:        inst.Type,
				Source:      api.InstanceSource{Type: "copy", Source: source, BaseImage: cfg["volatile.base_image"], InstanceOnly: instanceOnly, ContainerOnly: instanceOnly},
			}

			if len(args) == 2 {
				req.Name = dst
			}

			req.Start = start && startsOnCreate(ctx, c)
			op, err := c.CreateInstance(ctx, req)
			if err != nil {
				return err
			}

			err = op.WaitOrCancel(ctx)
			if err == nil && req.Name == "" {
				a.printf("Instance name is: %s\n", op.InstanceName())
			}

			return startCopy(ctx, c, op, start, err)
		},
	}

	cmd.Flags().BoolVar(&instanceOnly, "instance-only", false, "Copy the instance without its snapshots")
	cmd.Flags().BoolVar(&noProfiles, "no-profiles", false, "Create the instance with no profiles applied")
	cmd.Flags().BoolVarP(&ephemeral, "ephemeral", "e", false, "Ephemeral instance")
	cmd.Flags().BoolVar(&start, "start", false, "Start the instance once copied (a failed start leaves it, stopped)")
	cmd.Flags().StringArrayVarP(&config, "config", "c", nil, "Config key/value to apply to the new instance")
	cmd.Flags().StringArrayVarP(&profiles, "profile", "p", nil, "Profile to apply to the new instance")

	return cmd
}

// startCopy ends a copy with --start: a server that did not start the copy in its
// operation (one without instance_create_start, or a berthd from before it, whose
// operation carries no instance_created mark) gets a start request. A start that fails
// leaves the copy, stopped (it is the data the user asked for), and says so.
func startCopy(ctx context.Context, c *client.Client, op *client.Operation, start bool, err error) error {
	name := op.InstanceName()
	made := op.Metadata[api.OperationInstanceCreated] == true
	switch {
	case !start:
		return err
	case err != nil && made:
		return fmt.Errorf("%w (the copy %s exists, stopped)", err, name)
	case err != nil:
		return err
	case !made:
		err = setState(ctx, c, name, api.InstanceStatePut{Action: "start", Timeout: -1})
		if err != nil {
			return fmt.Errorf("%w (the copy %s exists, stopped)", err, name)
		}
	}

	return nil
}
