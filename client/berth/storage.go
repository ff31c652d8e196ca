package main

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
)

func newStorageCmd(a *app) *cobra.Command {
	list := newListSubcmd(a, "List storage pools", []string{"NAME", "DRIVER", "SOURCE", "DESCRIPTION", "USED BY", "STATE"},
		func(ctx context.Context, c *client.Client) (any, [][]string, error) {
			pools, err := c.GetStoragePools(ctx)
			if err != nil {
				return nil, nil, err
			}

			sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
			rows := [][]string{}
			for _, p := range pools {
				rows = append(rows, []string{p.Name, p.Driver, p.Config["source"], p.Description, strconv.Itoa(len(p.UsedBy)), strings.ToUpper(p.Status)})
			}

			return pools, rows, nil
		})

	return newGroup("storage", "Manage storage pools", list)
}
