package main

import (
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newStorageCmd(a *app) *cobra.Command {
	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List storage pools",
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

			pools, err := c.GetStoragePools(cmd.Context())
			if err != nil {
				return err
			}

			sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })

			rows := [][]string{}
			for _, p := range pools {
				rows = append(rows, []string{p.Name, p.Driver, p.Config["source"], p.Description, strconv.Itoa(len(p.UsedBy)), strings.ToUpper(p.Status)})
			}

			return renderList(a.out, format, []string{"NAME", "DRIVER", "SOURCE", "DESCRIPTION", "USED BY", "STATE"}, rows, pools)
		},
	}

	list.Flags().StringVarP(&format, "format", "f", formatTable, formatHelp)

	return newGroup("storage", "Manage storage pools", list)
}
