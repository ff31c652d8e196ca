package integration

import (
	"strings"
	"testing"
)

// TestRenameRendersTemplates renames a stopped instance and checks that its hostname and
// /etc/hosts follow at the next start, and that a running instance cannot be renamed.
func TestRenameRendersTemplates(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "old1")
	if _, err := d.berthErr("move", "old1", "new1"); err == nil {
		t.Fatal("renaming a running instance succeeded")
	}

	d.berth("stop", "old1")
	d.berth("move", "old1", "new1")
	d.berth("start", "new1")
	if st := d.waitRunning("new1"); st != "running" {
		t.Fatalf("new1 is %q", st)
	}

	host, _ := d.inside("new1", "hostname")
	hosts, _ := d.inside("new1", "cat", "/etc/hosts")
	if strings.TrimSpace(host) != "new1" || !strings.Contains(hosts, "new1") || strings.Contains(hosts, "old1") {
		t.Fatalf("after rename: hostname %q, /etc/hosts:\n%s", host, hosts)
	}

	code, _ := d.raw("GET", "/1.0/instances/old1", nil)
	if code != 404 {
		t.Fatalf("old name still answers %d", code)
	}

	code, env := d.raw("POST", "/1.0/instances/new1", strings.NewReader(`{"name":"bad_name"}`))
	if code != 400 || !strings.Contains(env.Error, "name") {
		t.Fatalf("rename to a bad name: %d %q", code, env.Error)
	}
}
