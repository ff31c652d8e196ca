package network

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startIdleDnsmasq starts a dnsmasq with Berth's command line for a network directory
// under state, configured to serve nothing (no DNS port, no DHCP range).
func startIdleDnsmasq(t *testing.T, state string) (*exec.Cmd, string) {
	t.Helper()
	dir := filepath.Join(state, "networks", "orph0")
	err := os.MkdirAll(dir, 0o755)
	if err != nil {
		t.Fatal(err)
	}

	d := newDnsmasq(dir, quietLog())
	err = os.WriteFile(d.confPath(), []byte("port=0\nuser=root\npid-file=\nlog-facility=-\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("/usr/sbin/dnsmasq", d.args()[1:]...)
	cmd.Args[0] = "dnsmasq"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}

	err = cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Ready once it logs "started": it has read its configuration (removed any earlier,
	// it exits with status 3 on its own, which would pass the test below vacuously).
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if strings.Contains(lines.Text(), "started") {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return cmd, dir
		}
	}

	t.Fatalf("dnsmasq did not start: %v", cmd.Wait())
	return nil, ""
}

// TestRemoveOrphanDnsmasqs: a Berth dnsmasq whose network directory is gone is stopped
// even though no bridge alias names it; one whose directory exists is left running.
func TestRemoveOrphanDnsmasqs(t *testing.T) {
	requireRoot(t)
	orphan, orphanDir := startIdleDnsmasq(t, t.TempDir())
	kept, _ := startIdleDnsmasq(t, t.TempDir())

	err := os.RemoveAll(filepath.Dir(filepath.Dir(orphanDir)))
	if err != nil {
		t.Fatal(err)
	}

	RemoveOrphanDnsmasqs(quietLog())

	exited := make(chan error, 1)
	go func() { exited <- orphan.Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the dnsmasq of a deleted network directory (pid %d) still runs", orphan.Process.Pid)
	}

	time.Sleep(100 * time.Millisecond)
	if kept.Process.Signal(syscall.Signal(0)) != nil || kept.ProcessState != nil {
		t.Fatalf("the dnsmasq of an existing network directory (pid %d) was stopped", kept.Process.Pid)
	}

	if dir, ok := dnsmasqNetworkDir(kept.Process.Pid); !ok {
		t.Fatalf("dnsmasqNetworkDir does not recognise Berth's dnsmasq (pid %d): %q", kept.Process.Pid, dir)
	}
}
