package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/test/testutil"
)

// TestStockLXCClient drives Debian's lxc (lxd-client 5.0) against berthd.
func TestStockLXCClient(t *testing.T) {
	parallel(t)
	requireSetup(t)
	lxcBin := testutil.LookPath(t, "lxc", "Debian package lxd-client")

	d := startDaemon(t)
	conf := t.TempDir()
	lxc := func(args ...string) (string, error) {
		cmd := exec.Command(lxcBin, args...)
		cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	must := func(args ...string) string {
		t.Helper()
		out, err := lxc(args...)
		if err != nil {
			t.Fatalf("lxc %s: %v\n%s\nberthd log:\n%s", strings.Join(args, " "), err, out, tail(d.log.String(), 30))
		}

		return out
	}

	// The first run of a fresh LXD_CONF only prints a welcome hint.
	_, _ = lxc("list")
	must("launch", "debian/12", "l1")
	out := must("list")
	if !strings.Contains(out, "l1") || !strings.Contains(out, "RUNNING") {
		t.Fatalf("lxc list:\n%s", out)
	}

	out = must("info", "l1")
	for _, want := range []string{"Name: l1", "Status: RUNNING", "PID:"} {
		if !strings.Contains(out, want) {
			t.Errorf("lxc info lacks %q:\n%s", want, out)
		}
	}

	must("stop", "l1")
	out = must("list", "--format", "csv")
	if !strings.Contains(out, "l1,STOPPED") {
		t.Fatalf("after lxc stop:\n%s", out)
	}

	must("start", "l1")
	if st := d.waitRunning("l1"); st != "running" {
		t.Errorf("after lxc start systemd is %q", st)
	}

	must("delete", "-f", "l1")
	out = must("list", "--format", "csv")
	if strings.Contains(out, "l1") {
		t.Fatalf("after lxc delete -f:\n%s", out)
	}

	must("image", "list")
}
