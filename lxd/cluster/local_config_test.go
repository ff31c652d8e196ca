package cluster

import (
	"context"
	"log/slog"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
)

// openMember makes dir a clustered member's state directory and opens its service.
func openMember(t *testing.T, dir string, l local) *Service {
	t.Helper()
	ctx := context.Background()
	conn, err := db.OpenLocal(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}

	err = writeLocal(ctx, conn, l)
	_ = conn.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, err = listener.LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}

	certPEM, keyPEM, _ := listener.ReadCertFiles(dir, listener.CertFile, listener.KeyFile)
	_ = listener.WriteCertFiles(dir, listener.ClusterCertFile, listener.ClusterKeyFile, certPEM, keyPEM)
	s, err := Open(ctx, Config{Dir: dir, Log: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(s.Close)
	return s
}

// Each member keeps its own listener addresses in its local.db: two members setting
// core.https_address keep their own values (before, both wrote the global node_config).
func TestLocalConfigPerMember(t *testing.T) {
	ctx := context.Background()
	s1 := openMember(t, t.TempDir(), local{MemberID: 1, Name: "n1", Address: "10.0.0.1:8443"})
	s2 := openMember(t, t.TempDir(), local{MemberID: 2, Name: "n2", Address: "10.0.0.2:8443"})

	cfg, err := s2.LocalConfig(ctx)
	if err != nil || cfg["core.https_address"] != "10.0.0.2:8443" || cfg["cluster.https_address"] != "10.0.0.2:8443" {
		t.Fatalf("seeded local config: %v %v", cfg, err)
	}

	err = s1.UpdateLocalConfig(ctx, map[string]string{"core.metrics_address": "10.0.0.1:9100"}, []string{"core.https_address"})
	if err != nil {
		t.Fatal(err)
	}

	err = s2.UpdateLocalConfig(ctx, map[string]string{"core.metrics_address": "10.0.0.2:9100"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	c1, _ := s1.LocalConfig(ctx)
	c2, _ := s2.LocalConfig(ctx)
	if c1["core.metrics_address"] != "10.0.0.1:9100" || c2["core.metrics_address"] != "10.0.0.2:9100" {
		t.Fatalf("members overwrote each other: %v %v", c1, c2)
	}

	if _, ok := c1["core.https_address"]; ok {
		t.Fatalf("unset key kept: %v", c1)
	}

	if s1.UpdateLocalConfig(ctx, map[string]string{"core.remote_token_expiry": "1H"}, nil) == nil {
		t.Fatal("a global key was stored in local.db")
	}

	var unclustered *Service
	cfg, err = unclustered.LocalConfig(ctx)
	if cfg != nil || err != nil {
		t.Fatalf("unclustered local config: %v %v", cfg, err)
	}
}
