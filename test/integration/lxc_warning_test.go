package integration

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// warningsOf lists d's warnings through the API.
func warningsOf(t *testing.T, d *daemon) []api.Warning {
	t.Helper()
	code, env := d.raw(http.MethodGet, "/1.0/warnings?recursion=1", nil)
	var list []api.Warning
	err := json.Unmarshal(env.Metadata, &list)
	if code != http.StatusOK || err != nil {
		t.Fatalf("GET /1.0/warnings: %d %v %s", code, err, env.Error)
	}

	return list
}

// warningAbout returns the warning whose entity is url (fails when there is none).
func warningAbout(t *testing.T, d *daemon, url string) api.Warning {
	t.Helper()
	for _, w := range warningsOf(t, d) {
		if w.EntityURL == url {
			return w
		}
	}

	t.Fatalf("no warning about %s in %+v", url, warningsOf(t, d))
	return api.Warning{}
}

// TestLXCWarnings: a host problem berthd notices at start (a network whose bridge name
// another interface took) is a warning that lxc warning list/show/ack/delete handle; it
// is counted, not duplicated, when seen again, stays acknowledged, and is resolved when
// the problem is gone.
func TestLXCWarnings(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)
	lxc := newLXCRunner(t, d)
	nw := testNetName("w")
	url := "/1.0/networks/" + nw
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", nw).Run()
		_, _ = lxc.run("network", "delete", nw)
	})

	lxc.must("network", "create", nw, "ipv6.address=none")
	for _, w := range warningsOf(t, d) {
		if w.EntityURL == url {
			t.Fatalf("warning before any problem: %+v", w)
		}
	}

	// Another interface (a bridge not ours: no alias) takes the name while berthd is away.
	d.kill(syscall.SIGTERM)
	err := ip.LinkDel(nw)
	if err != nil {
		t.Fatal(err)
	}

	dummy, err := exec.Command("ip", "link", "add", nw, "type", "bridge").CombinedOutput()
	if err != nil {
		t.Fatalf("adding bridge %s: %v %s", nw, err, dummy)
	}

	d.start()
	w := warningAbout(t, d, url)
	if w.Type != "Network failed to start" || w.Status != "new" || w.Count != 1 || w.Severity != "high" {
		t.Fatalf("warning: %+v", w)
	}

	out := lxc.must("warning", "list", "--format", "csv")
	if !strings.Contains(out, w.UUID) || !strings.Contains(out, "Network failed to start") {
		t.Fatalf("lxc warning list:\n%s", out)
	}

	out = lxc.must("warning", "show", w.UUID)
	if !strings.Contains(out, "entity_url: "+url) || !strings.Contains(out, "status: new") {
		t.Fatalf("lxc warning show:\n%s", out)
	}

	lxc.must("warning", "ack", w.UUID)
	if got := warningAbout(t, d, url); got.Status != "acknowledged" {
		t.Fatalf("after ack: %s", got.Status)
	}

	// Bad input: 400 or 404, nothing changed.
	code, env := d.raw(http.MethodPut, "/1.0/warnings/"+w.UUID, strings.NewReader(`{"status":"resolved"}`))
	if code != http.StatusBadRequest {
		t.Errorf("PUT status resolved: %d %s", code, env.Error)
	}

	code, _ = d.raw(http.MethodPut, "/1.0/warnings/"+w.UUID, strings.NewReader(`{"status":`))
	if code != http.StatusBadRequest {
		t.Errorf("PUT malformed: %d", code)
	}

	code, _ = d.raw(http.MethodGet, "/1.0/warnings/00000000-0000-0000-0000-000000000000", nil)
	if code != http.StatusNotFound {
		t.Errorf("GET unknown: %d", code)
	}

	// Seen again: counted, still acknowledged.
	d.kill(syscall.SIGTERM)
	d.start()
	got := warningAbout(t, d, url)
	if got.UUID != w.UUID || got.Count != 2 || got.Status != "acknowledged" {
		t.Fatalf("seen again: %+v", got)
	}

	// The problem gone: resolved, and the network runs.
	d.kill(syscall.SIGTERM)
	err = ip.LinkDel(nw)
	if err != nil {
		t.Fatal(err)
	}

	d.start()
	if got := warningAbout(t, d, url); got.Status != "resolved" {
		t.Fatalf("after the fix: %+v", got)
	}

	n, _, err := d.c.GetNetwork(t.Context(), nw)
	if err != nil || n.Status != "Created" {
		t.Fatalf("network after the fix: %+v %v", n, err)
	}

	lxc.must("warning", "delete", w.UUID)
	for _, x := range warningsOf(t, d) {
		if x.UUID == w.UUID {
			t.Fatalf("deleted warning still listed")
		}
	}

	lxc.fails("warning", "delete", w.UUID)
}
