package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/shared/api"
)

func newPublishCmd(a *app) *cobra.Command {
	var aliases []string
	var force bool
	var compression string
	cmd := &cobra.Command{
		Use:   "publish [REMOTE:]NAME[/SNAPSHOT] [REMOTE:] [key=value...]",
		Short: "Publish instances as images",
		Args:  rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rest := args[1:]
			if len(rest) > 0 && strings.HasSuffix(rest[0], ":") && !strings.Contains(rest[0], "=") {
				// lxc's target remote: berth publishes on the instance's own.
				src, _, err := a.parseRemote(args[0])
				if err != nil {
					return err
				}

				dst, _, err := a.parseRemote(rest[0])
				if err != nil {
					return err
				}

				if src != dst {
					return fmt.Errorf("publishing to another remote (%s to %s) is not supported", src, dst)
				}

				rest = rest[1:]
			}

			props := map[string]string{}
			for _, kv := range rest {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("bad key=value pair: %q", kv)
				}

				props[k] = v
			}

			return a.publish(cmd.Context(), args[0], props, aliases, force, compression)
		},
	}

	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "New alias to define at target")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Stop the instance if currently running")
	cmd.Flags().StringVar(&compression, "compression", "", "Compression algorithm to use (gzip, zstd, xz or none)")

	return cmd
}

func (a *app) publish(ctx context.Context, arg string, props map[string]string, aliases []string, force bool, compression string) error {
	c, src, err := a.instanceTarget(arg)
	if err != nil {
		return err
	}

	name, _, isSnap, err := splitSnapshot(src)
	if err != nil {
		return err
	}

	restart := false
	if !isSnap {
		inst, _, err := c.GetInstance(ctx, name)
		if err != nil {
			return err
		}

		if inst.StatusCode != 0 && inst.StatusCode != api.Stopped {
			if !force {
				return fmt.Errorf("the instance is currently running. Use --force to have it stopped and restarted")
			}

			err = setState(ctx, c, name, api.InstanceStatePut{Action: "stop", Timeout: -1, Force: true})
			if err != nil {
				return err
			}

			restart = true
		}
	}

	req := api.ImagesPost{CompressionAlgorithm: compression, Source: &api.ImagesPostSource{Type: "instance", Name: src}}
	if isSnap {
		req.Source.Type = "snapshot"
	}

	if len(props) > 0 {
		req.Properties = props
	}

	for _, al := range aliases {
		req.Aliases = append(req.Aliases, api.ImageAlias{Name: al})
	}

	op, err := c.PublishImage(ctx, req)
	if err == nil {
		err = op.WaitOrCancel(ctx)
	}

	if restart {
		startErr := setState(ctx, c, name, api.InstanceStatePut{Action: "start"})
		if err == nil {
			err = startErr
		}
	}

	if err != nil {
		return err
	}

	fp, _ := op.Metadata["fingerprint"].(string)
	a.printf("Instance published with fingerprint: %s\n", fp)
	return nil
}
