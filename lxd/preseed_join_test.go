package main

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/shared/api"
)

// TestTokenInPassword: the join request of LXD 5.0.2's lxd init (token as
// cluster_password) becomes a token join; a real password stays a password (refused).
func TestTokenInPassword(t *testing.T) {
	tok := cluster.EncodeToken(api.ClusterMemberJoinToken{ServerName: "m2", Fingerprint: strings.Repeat("a", 64),
		Addresses: []string{"10.0.0.1:8443"}, Secret: "s"})
	req := api.ClusterPut{ClusterAddress: "10.0.0.1:8443", ClusterPassword: tok}
	tokenInPassword(&req)
	if req.ClusterToken != tok || req.ClusterPassword != "" {
		t.Errorf("a token sent as cluster_password: %+v", req)
	}

	req = api.ClusterPut{ClusterAddress: "10.0.0.1:8443", ClusterPassword: "hunter2"}
	tokenInPassword(&req)
	if req.ClusterToken != "" || req.ClusterPassword != "hunter2" {
		t.Errorf("a password: %+v", req)
	}
}
