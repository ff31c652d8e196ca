package main

import (
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
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

	return newGroup("profile", "Manage profiles", list, show)
}

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

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show client and server versions",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.printf("Client version: %s\n", client.Version)

			server := "unreachable"
			c, err := a.client()
			if err == nil {
				s, _, err := c.GetServer(cmd.Context())
				if err == nil {
					server = s.Environment.ServerVersion
				}
			}

			a.printf("Server version: %s\n", server)

			return nil
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}

	return "NO"
}
