package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/shared/api"
)

// newClusterCmd is `berth cluster`: enable and join here; the other subcommands
// (members, tokens) are added by clusterMemberCmds.
func newClusterCmd(a *app) *cobra.Command {
	subs := append([]*cobra.Command{newClusterEnableCmd(a), newClusterJoinCmd(a)}, clusterMemberCmds(a)...)
	return newGroup("cluster", "Manage the cluster", subs...)
}

// clusterMemberCmds are the cluster subcommands beside enable and join.
var clusterMemberCmds = func(*app) []*cobra.Command { return nil }

func newClusterEnableCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "enable [REMOTE:]NAME",
		Short: "Turn the server into the first member of a new cluster",
		Long: "Turn the server into the first member of a new cluster, named NAME. It must listen\n" +
			"on the network (core.https_address); its containers, images, profiles and volumes\n" +
			"move into the cluster database, and the server restarts itself.",
		Args: rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			cur, etag, err := c.GetCluster(cmd.Context())
			if err != nil {
				return err
			}

			if cur.Enabled {
				return errors.New("this server is already clustered")
			}

			op, err := c.UpdateCluster(cmd.Context(), api.ClusterPut{Cluster: api.Cluster{ServerName: name, Enabled: true}}, etag)
			if err != nil {
				return err
			}

			err = op.Wait(cmd.Context())
			if err != nil {
				return err
			}

			a.printf("Clustering enabled\n")
			return nil
		},
	}
}

func newClusterJoinCmd(a *app) *cobra.Command {
	var name, address string
	cmd := &cobra.Command{
		Use:   "join [REMOTE:] TOKEN",
		Short: "Join this fresh server to a cluster with a join token",
		Long: "Join the server (the default remote, or REMOTE:) to the cluster a join token from\n" +
			"`cluster add` names. The server must be fresh (no instances, no custom volumes);\n" +
			"it restarts itself as a member.",
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, token := "", args[0]
			if len(args) == 2 {
				target, token = args[0], args[1]
			}

			c, err := a.client()
			if target != "" {
				c, _, err = a.target(target)
			}

			if err != nil {
				return err
			}

			if name == "" {
				name = tokenServerName(token)
			}

			if name == "" {
				return errors.New("--name is required: the member name the token was issued for")
			}

			req := api.ClusterPut{Cluster: api.Cluster{ServerName: name, Enabled: true}, ServerAddress: address, ClusterToken: token}
			op, err := c.UpdateCluster(cmd.Context(), req, "")
			if err != nil {
				return err
			}

			err = op.Wait(cmd.Context())
			if err != nil {
				return err
			}

			a.printf("Joined the cluster as %s\n", name)
			return nil
		},
	}

	cmd.Flags().StringVar(&name, "name", "", "this member's name (default: the token's)")
	cmd.Flags().StringVar(&address, "address", "", "this member's address (default: its core.https_address)")
	return cmd
}

// tokenServerName is the member name a join token was issued for ("" if it is not one).
func tokenServerName(token string) string {
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if err != nil {
		return ""
	}

	var t api.ClusterMemberJoinToken
	_ = json.Unmarshal(data, &t)
	return t.ServerName
}
