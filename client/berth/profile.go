package main

import (
	"context"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
)

func newProfileCmd(a *app) *cobra.Command {
	list := newListSubcmd(a, "List profiles", []string{"NAME", "DESCRIPTION", "USED BY"},
		func(ctx context.Context, c *client.Client) (any, [][]string, error) {
			profiles, err := c.GetProfiles(ctx)
			if err != nil {
				return nil, nil, err
			}

			sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name < profiles[j].Name })
			rows := [][]string{}
			for _, p := range profiles {
				rows = append(rows, []string{p.Name, p.Description, strconv.Itoa(len(p.UsedBy))})
			}

			return profiles, rows, nil
		})

	show := &cobra.Command{
		Use:   "show [REMOTE:]NAME",
		Short: "Show a profile",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			p, _, err := c.GetProfile(cmd.Context(), name)
			if err != nil {
				return err
			}

			sort.Strings(p.UsedBy)

			return writeYAML(a.out, p)
		},
	}

	return newGroup("profile", "Manage profiles", list, show, newProfileCreateCmd(a), newProfileEditCmd(a),
		newProfileSetCmd(a, false), newProfileSetCmd(a, true), newProfileGetCmd(a),
		newProfileAssignCmd(a, "assign"), newProfileAssignCmd(a, "add"), newProfileAssignCmd(a, "remove"),
		newProfileCopyCmd(a), newProfileRenameCmd(a), newProfileDeleteCmd(a), newConfigDeviceCmd(a, true))
}
