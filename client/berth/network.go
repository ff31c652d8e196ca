package main

import (
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newNetworkCmd(a *app) *cobra.Command {
	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List networks",
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

			nets, err := c.GetNetworks(cmd.Context())
			if err != nil {
				return err
			}

			sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })

			rows := [][]string{}
			for _, n := range nets {
				// Like lxc: loopback and unknown interfaces are not shown.
				if n.Type == "loopback" || n.Type == "unknown" {
					continue
				}

				rows = append(rows, []string{n.Name, n.Type, yesNo(n.Managed), n.Config["ipv4.address"], n.Config["ipv6.address"],
					n.Description, strconv.Itoa(len(n.UsedBy)), strings.ToUpper(n.Status)})
			}

			return renderList(a.out, format, []string{"NAME", "TYPE", "MANAGED", "IPV4", "IPV6", "DESCRIPTION", "USED BY", "STATE"}, rows, nets)
		},
	}

	list.Flags().StringVarP(&format, "format", "f", formatTable, formatHelp)

	return newGroup("network", "Manage networks", list)
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}

	return "NO"
}
