package main

import (
	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/shared/api"
)

// tokenInPassword takes a cluster_password that is a join token as the cluster_token.
// The stock `lxd init --preseed` of LXD 5.0.2 sends a preseed's cluster_token that way
// (with the cluster_address and cluster_certificate it checked against the token), and
// LXD's server accepts it so: without this, a host could not be joined by LXD's own tool.
// Berth has no password joins: a password that is not a token is still refused.
func tokenInPassword(req *api.ClusterPut) {
	if req.ClusterToken != "" || req.ClusterPassword == "" {
		return
	}

	_, err := cluster.DecodeToken(req.ClusterPassword)
	if err == nil {
		req.ClusterToken, req.ClusterPassword = req.ClusterPassword, ""
	}
}
