package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// `berth cluster list|show|rename|remove|edit` (issue 16), as `lxc cluster` has them.
// Each part of `berth cluster` adds its commands to clusterMemberCmds in its own file.

func init() {
	prev := clusterMemberCmds
	clusterMemberCmds = func(a *app) []*cobra.Command {
		return append(prev(a), newClusterListCmd(a), newClusterShowCmd(a), newClusterRenameCmd(a), newClusterRemoveCmd(a),
			newClusterEditCmd(a))
	}
}

// clusterListHeader is `lxc cluster list`'s (LXD 5.0).
var clusterListHeader = []string{"NAME", "URL", "ROLES", "ARCHITECTURE", "FAILURE DOMAIN", "DESCRIPTION", "STATE", "MESSAGE"}

func newClusterListCmd(a *app) *cobra.Command {
	return newListSubcmd(a, "List the cluster members", clusterListHeader,
		func(ctx context.Context, c *client.Client) (any, [][]string, error) {
			ms, err := c.GetClusterMembers(ctx)
			if err != nil {
				return nil, nil, err
			}

			return ms, clusterRows(ms), nil
		})
}

// clusterRows are the table rows of members: roles one per line, the state in
// capitals, as lxc shows them.
func clusterRows(ms []api.ClusterMember) [][]string {
	rows := [][]string{}
	for _, m := range ms {
		rows = append(rows, []string{m.ServerName, m.URL, strings.Join(m.Roles, "\n"), m.Architecture, m.FailureDomain,
			m.Description, strings.ToUpper(m.Status), m.Message})
	}

	return rows
}

func newClusterShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show [REMOTE:]MEMBER",
		Short: "Show a cluster member",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			m, _, err := c.GetClusterMember(cmd.Context(), name)
			if err != nil {
				return err
			}

			return writeYAML(a.out, m)
		},
	}
}

func newClusterRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rename [REMOTE:]MEMBER NEW-NAME",
		Short: "Rename a cluster member",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			err = c.RenameClusterMember(cmd.Context(), name, args[1])
			if err != nil {
				return err
			}

			a.printf("Member %s renamed to %s\n", name, args[1])
			return nil
		},
	}
}

func newClusterRemoveCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "remove [REMOTE:]MEMBER",
		Aliases: []string{"rm"},
		Short:   "Remove a member from the cluster",
		Long: "Remove a member from the cluster. A member that still has instances is refused;\n" +
			"--force removes it anyway, with its instances' records (for a member that is gone\n" +
			"for good), and even when its database node cannot be reached.",
		Args: rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			err = c.DeleteClusterMember(cmd.Context(), name, force)
			if err != nil {
				return err
			}

			a.printf("Member %s removed\n", name)
			return nil
		},
	}

	cmd.Flags().BoolVarP(&force, "force", "f", false, "Remove the member even if it has instances or cannot be reached")
	return cmd
}

func newClusterEditCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "edit [REMOTE:]MEMBER",
		Short: "Edit a cluster member as YAML (standard input when not a terminal)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			parse := func(data []byte) (api.ClusterMemberPut, error) {
				put := api.ClusterMemberPut{}
				err := yaml.Unmarshal(data, &put)
				if err != nil {
					return put, fmt.Errorf("parsing YAML: %w", err)
				}

				return put, nil
			}

			// Like lxc: standard input is sent without If-Match.
			if !term.IsTerminal(int(os.Stdin.Fd())) {
				data, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
				if err != nil {
					return err
				}

				put, err := parse(data)
				if err != nil {
					return err
				}

				return c.UpdateClusterMember(cmd.Context(), name, put, "")
			}

			m, etag, err := c.GetClusterMember(cmd.Context(), name)
			if err != nil {
				return err
			}

			return editYAML(cmd.Context(), m.Writable(), func(data []byte) error {
				put, err := parse(data)
				if err != nil {
					return err
				}

				return c.UpdateClusterMember(cmd.Context(), name, put, etag)
			})
		},
	}
}
