package integration

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProjectsDNS: two projects' containers of one name on the shared default bridge
// each have a DNS name of their own there: the default project's c1 is c1.berth, the
// other's c1.<project>.berth, and neither name answers with the other's address.
func TestProjectsDNS(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startNetDaemon(t)
	l := newLXCRunner(t, d)

	// The default project's profile (with its eth0) and images.
	l.must("project", "create", "pdns", "-c", "features.images=false", "-c", "features.profiles=false")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "c1", "--project", "pdns")
		_, _ = l.run("delete", "-f", "c1", "--project", "default")
		_, _ = l.run("project", "delete", "pdns")
	})

	l.must("launch", "debian/12", "c1")
	l.must("launch", "debian/12", "c1", "--project", "pdns")

	ipv4 := func(proj string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, _ := l.run("list", "c1", "--project", proj, "-c", "4", "--format", "csv")
			if a, _, ok := strings.Cut(strings.TrimSpace(out), " "); ok && net.ParseIP(a) != nil {
				return a
			}

			if time.Now().After(deadline) {
				t.Fatalf("c1 in %s has no IPv4 address: %q", proj, out)
			}

			time.Sleep(200 * time.Millisecond)
		}
	}

	def, other := ipv4("default"), ipv4("pdns")
	gw, _, err := net.ParseCIDR(d.defaultNetwork().Config["ipv4.address"])
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ name, want, not string }{
		{"c1.berth", def, other},
		{"c1.pdns.berth", other, def},
	} {
		got, err := resolveAt(gw.String(), c.name)
		if err != nil || !slices.Contains(got, c.want) || slices.Contains(got, c.not) {
			t.Errorf("%s resolves to %v (%v), want %s and not %s", c.name, got, err, c.want, c.not)
		}
	}
}
