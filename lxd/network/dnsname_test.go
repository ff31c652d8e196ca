package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDNSNameProjects: instances of one name in two projects on a shared bridge get one
// DNS name each (the default project's bare, the other's qualified by its project), and
// a project whose name is no DNS label gives no name rather than a wrong or broken one.
func TestDNSNameProjects(t *testing.T) {
	for _, c := range []struct{ proj, name, want string }{
		{"", "c1", "c1"},
		{"default", "c1", "c1"},
		{"p1", "c1", "c1.p1"},
		{"team.a", "c1", ""},
		{"Ünï", "c1", ""},
	} {
		if got := DNSName(c.proj, c.name); got != c.want {
			t.Errorf("DNSName(%q, %q) = %q, want %q", c.proj, c.name, got, c.want)
		}
	}

	dir := t.TempDir()
	res := map[string]reservation{
		"c1.eth0":    {MAC: "00:16:3e:00:00:01", IP: "10.0.0.2", Host: DNSName("default", "c1")},
		"p1_c1.eth0": {MAC: "00:16:3e:00:00:02", IP: "10.0.0.3", Host: DNSName("p1", "c1")},
		"x_c1.eth0":  {MAC: "00:16:3e:00:00:03", IP: "10.0.0.4", Host: DNSName("team.a", "c1")},
	}
	err := writeReservationFiles(dir, "berth", res, nil)
	if err != nil {
		t.Fatal(err)
	}

	dns, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.dns"))
	want := "10.0.0.2 c1.berth c1\n10.0.0.3 c1.p1.berth c1.p1\n"
	if string(dns) != want {
		t.Errorf("dnsmasq.dns =\n%s\nwant\n%s", dns, want)
	}

	hosts, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.hosts"))
	if n := strings.Count(string(hosts), "\n"); n != 3 {
		t.Errorf("dnsmasq.hosts has %d reservations, want 3 (every NIC keeps its address):\n%s", n, hosts)
	}

	// A host name that is not one or two DNS labels never reaches dnsmasq's files.
	bad := map[string]reservation{"c.eth0": {MAC: "00:16:3e:00:00:04", IP: "10.0.0.5", Host: "a.b.c"}}
	if err := writeReservationFiles(t.TempDir(), "berth", bad, nil); err == nil {
		t.Errorf("a three-label host name was written")
	}

}
