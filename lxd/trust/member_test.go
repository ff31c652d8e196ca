package trust

import (
	"testing"

	"github.com/berth-dev/berth/lxd/listener"
)

// A client presenting the cluster certificate is a member (fully trusted, Member set);
// the same certificate is nobody before the store knows it as the cluster's, and a
// trusted client certificate is no member.
func TestClusterCertificateIsAMember(t *testing.T) {
	s, _ := newStore(t)
	addr, server := tlsServer(t, s, nil)
	cluster, err := listener.LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	if got := fetch(t, addr, clientConfig(server, cluster.KeyPair)); got != "untrusted" {
		t.Fatalf("cluster certificate before it is set: %q", got)
	}

	s.SetClusterFingerprint(cluster.Fingerprint)
	if got := fetch(t, addr, clientConfig(server, cluster.KeyPair)); got != "trusted cluster member" {
		t.Fatalf("cluster certificate: %q", got)
	}

	other, _ := clientCert(t, "x")
	if got := fetch(t, addr, clientConfig(server, other)); got != "untrusted" {
		t.Fatalf("another certificate: %q", got)
	}

	s.SetClusterFingerprint("")
	if got := fetch(t, addr, clientConfig(server, cluster.KeyPair)); got != "untrusted" {
		t.Fatalf("cluster certificate after unset: %q", got)
	}
}
