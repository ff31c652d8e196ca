package main

import (
	"sort"
	"strconv"

	"github.com/spf13/cobra"
)

func newProfileCmd(a *app) *cobra.Command {
	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List profiles",
		Args:    rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := checkFormat(format)
			if err != nil {
				return err
			}

			c, err := a.client()
			if err != nil {
				return err
			}

			profiles, err := c.GetProfiles(cmd.Context())
			if err != nil {
				return err
			}

			sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name < profiles[j].Name })

			rows := [][]string{}
			for _, p := range profiles {
				rows = append(rows, []string{p.Name, p.Description, strconv.Itoa(len(p.UsedBy))})
			}

			return renderList(a.out, format, []string{"NAME", "DESCRIPTION", "USED BY"}, rows, profiles)
		},
	}

	list.Flags().StringVarP(&format, "format", "f", formatTable, formatHelp)

	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a profile",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}

			p, _, err := c.GetProfile(cmd.Context(), args[0])
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
