package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"

	"github.com/berth-dev/berth/shared/api"
)

func newNetworkCmd(a *app) *cobra.Command {
	list := newListSubcmd(a, "List networks", []string{"NAME", "TYPE", "MANAGED", "IPV4", "IPV6", "DESCRIPTION", "USED BY", "STATE"},
		func(ctx context.Context, c *client.Client) (any, [][]string, error) {
			nets, err := c.GetNetworks(ctx)
			if err != nil {
				return nil, nil, err
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

			return nets, rows, nil
		})

	return newGroup("network", "Manage networks", list, newNetworkShowCmd(a), newNetworkInfoCmd(a), newNetworkCreateCmd(a),
		newNetworkSetCmd(a), newNetworkUnsetCmd(a), newNetworkGetCmd(a), newNetworkDeleteCmd(a))
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}

	return "NO"
}

func newNetworkShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show [REMOTE:]NAME",
		Short: "Show a network",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			n, _, err := c.GetNetwork(cmd.Context(), name)
			if err != nil {
				return err
			}

			sort.Strings(n.UsedBy)
			return writeYAML(a.out, n)
		},
	}
}

func newNetworkInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info [REMOTE:]NAME",
		Short: "Show the state of a network's interface",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			st, err := c.GetNetworkState(cmd.Context(), name)
			if err != nil {
				return err
			}

			a.printNetworkState(args[0], st)

			return nil
		},
	}
}

// printNetworkState prints a network's state in lxc network info's layout.
func (a *app) printNetworkState(name string, st *api.NetworkState) {
	a.printf("Name: %s\nMAC address: %s\nMTU: %d\nState: %s\nType: %s\n", name, st.Hwaddr, st.Mtu, st.State, st.Type)

	if len(st.Addresses) > 0 {
		a.printf("\nIP addresses:\n")

		for _, ad := range st.Addresses {
			a.printf("  %s\t%s/%s (%s)\n", ad.Family, ad.Address, ad.Netmask, ad.Scope)
		}
	}

	a.printf("\nNetwork usage:\n  Bytes received: %d\n  Bytes sent: %d\n  Packets received: %d\n  Packets sent: %d\n",
		st.Counters.BytesReceived, st.Counters.BytesSent, st.Counters.PacketsReceived, st.Counters.PacketsSent)

	if st.Bridge != nil {
		a.printf("\nBridge:\n  ID: %s\n  STP: %t\n  Forward delay: %d\n  Default VLAN ID: %d\n  VLAN filtering: %t\n  Upper devices: %s\n",
			st.Bridge.ID, st.Bridge.STP, st.Bridge.ForwardDelay, st.Bridge.VLANDefault, st.Bridge.VLANFiltering,
			strings.Join(st.Bridge.UpperDevices, ", "))
	}
}

func newNetworkCreateCmd(a *app) *cobra.Command {
	var typ, description string
	cmd := &cobra.Command{
		Use:   "create [REMOTE:]NAME [key=value...]",
		Short: "Create a managed network",
		Args:  rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			config, err := parseKeyValues(args[1:])
			if err != nil {
				return err
			}

			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			req := api.NetworksPost{Name: name, Type: typ, NetworkPut: api.NetworkPut{Config: config, Description: description}}
			err = c.CreateNetwork(cmd.Context(), req)
			if err != nil {
				return err
			}

			fmt.Fprintf(a.out, "Network %s created\n", args[0])
			return nil
		},
	}

	cmd.Flags().StringVarP(&typ, "type", "t", "", "Network type (bridge)")
	cmd.Flags().StringVar(&description, "description", "", "Network description")
	return cmd
}

// updateNetworkConfig reads a network, changes its config and writes it back guarded by
// its ETag, like lxc.
func updateNetworkConfig(cmd *cobra.Command, a *app, name string, change func(config map[string]string) error) error {
	c, name, err := a.instanceTarget(name)
	if err != nil {
		return err
	}

	n, etag, err := c.GetNetwork(cmd.Context(), name)
	if err != nil {
		return err
	}

	n.Config = api.NonNil(n.Config)

	err = change(n.Config)
	if err != nil {
		return err
	}

	return c.UpdateNetwork(cmd.Context(), name, n.NetworkPut, etag)
}

func newNetworkSetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set [REMOTE:]NAME key=value... | set [REMOTE:]NAME KEY VALUE",
		Short: "Set network configuration keys",
		Args:  rangeArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var set map[string]string
			var err error
			if len(args) == 3 && !strings.Contains(args[1], "=") {
				set = map[string]string{args[1]: args[2]}
			} else {
				set, err = parseKeyValues(args[1:])
				if err != nil {
					return err
				}
			}

			return updateNetworkConfig(cmd, a, args[0], func(config map[string]string) error {
				for k, v := range set {
					config[k] = v
				}

				return nil
			})
		},
	}
}

func newNetworkUnsetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unset [REMOTE:]NAME KEY",
		Short: "Unset a network configuration key",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return updateNetworkConfig(cmd, a, args[0], func(config map[string]string) error {
				if _, ok := config[args[1]]; !ok {
					return fmt.Errorf("key %q is not set", args[1])
				}

				delete(config, args[1])
				return nil
			})
		},
	}
}

func newNetworkGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get [REMOTE:]NAME KEY",
		Short: "Get a network configuration key",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			n, _, err := c.GetNetwork(cmd.Context(), name)
			if err != nil {
				return err
			}

			fmt.Fprintln(a.out, n.Config[args[1]])
			return nil
		},
	}
}

func newNetworkDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete [REMOTE:]NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a managed network",
		Args:    rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			err = c.DeleteNetwork(cmd.Context(), name)
			if err != nil {
				return err
			}

			fmt.Fprintf(a.out, "Network %s deleted\n", args[0])
			return nil
		},
	}
}
