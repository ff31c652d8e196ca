package main

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
)

// On a clustered member the listener addresses are its own and stored apart from the
// cluster's keys; a core.https_address another member left in node_config is not shown.
func TestServerConfigSplit(t *testing.T) {
	cfg := map[string]string{keyHTTPSAddress: "10.0.0.1:8443", keyMetricsAddress: "10.0.0.1:9100", keyClusterAddress: "10.0.0.1:8443", keyTokenExpiry: "1H"}
	global, local := splitServerConfig(true, cfg)
	if len(local) != 3 || len(global) != 1 || global[keyTokenExpiry] != "1H" {
		t.Fatalf("clustered split: global %v local %v", global, local)
	}

	global, local = splitServerConfig(false, cfg)
	if len(local) != 0 || len(global) != 4 {
		t.Fatalf("unclustered split: global %v local %v", global, local)
	}

	stored := map[string]string{keyHTTPSAddress: "10.0.0.2:8443", keyTokenExpiry: "2H"}
	got := mergeServerConfig(true, stored, map[string]string{keyHTTPSAddress: "10.0.0.1:8443"})
	if got[keyHTTPSAddress] != "10.0.0.1:8443" || got[keyTokenExpiry] != "2H" || len(got) != 2 {
		t.Fatalf("merged: %v", got)
	}
}

// A global key changed in the database (through another member) is taken in by the
// reload, while this member's own keys stay.
func TestReloadGlobalConfig(t *testing.T) {
	d := newFakeClusterDaemon(t)
	ctx := context.Background()
	d.config = map[string]string{keyHTTPSAddress: "10.0.0.1:8443", keyTokenExpiry: "1H"}
	err := d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateNodeConfig(ctx, map[string]string{keyTokenExpiry: "5H", keyMetricsAuth: "false", keyHTTPSAddress: "10.0.0.2:8443"}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}

	err = d.reloadGlobalConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}

	cfg := d.serverConfig()
	if cfg[keyTokenExpiry] != "5H" || d.metricsAuthentication() || cfg[keyHTTPSAddress] != "10.0.0.1:8443" {
		t.Fatalf("after reload: %v", cfg)
	}
}
