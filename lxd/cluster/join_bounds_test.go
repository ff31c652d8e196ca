package cluster

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// The accept exchange is bounded as a whole: a token listing many blackholed members
// (they take the connection, never the TLS handshake) costs acceptTimeout, not
// acceptTimeout for each.
func TestAskAcceptBoundedOverall(t *testing.T) {
	oldTotal, oldDial := acceptTimeout, acceptDialTimeout
	acceptTimeout, acceptDialTimeout = 400*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { acceptTimeout, acceptDialTimeout = oldTotal, oldDial })

	var addrs []string
	for range 6 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() { _ = l.Close() })
		addrs = append(addrs, l.Addr().String())
	}

	own, err := listener.LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	req := JoinRequest{Name: "n2", Address: "127.0.0.1:9443", Token: api.ClusterMemberJoinToken{
		ServerName: "n2", Secret: "s", Fingerprint: strings.Repeat("a", 64), Addresses: addrs,
	}}
	start := time.Now()
	_, err = askAccept(context.Background(), req, own)
	took := time.Since(start)
	if statusOf(err) != 503 {
		t.Fatalf("blackholed members: %v", err)
	}

	if took > time.Second {
		t.Fatalf("the accept exchange took %v over %d blackholed addresses, want about %v", took, len(addrs), acceptTimeout)
	}
}

// A token's addresses must be host:port: anything else would change the accept URL.
func TestTokenAddressValidated(t *testing.T) {
	for _, a := range []string{"10.0.0.1:8443", "[fd00::1]:8443", "node1.lan:8443"} {
		if err := validTokenAddress(a); err != nil {
			t.Errorf("%q refused: %v", a, err)
		}
	}

	for _, a := range []string{"10.0.0.1", "evil.example/x?:8443", "user@10.0.0.1:8443", "10.0.0.1:0", "10.0.0.1:99999", ":8443", "a#b:8443", "10.0.0.1:84x"} {
		if validTokenAddress(a) == nil {
			t.Errorf("%q accepted", a)
		}

		tok := EncodeToken(api.ClusterMemberJoinToken{ServerName: "n2", Secret: "s", Fingerprint: strings.Repeat("a", 64), Addresses: []string{a}})
		if _, err := DecodeToken(tok); err == nil {
			t.Errorf("token with address %q decoded", a)
		}
	}
}
