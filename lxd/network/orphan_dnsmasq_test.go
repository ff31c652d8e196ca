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

// How a forged dnsmasq runs (startIdleDnsmasq).
const (
	asBerth     = iota // as Berth runs it
	asContainer        // as a container's root: a user namespace of its own, root mapped to 100000
	asLocalUser        // as an unprivileged local user of the host (uid 100001)
)

// startIdleDnsmasq starts a dnsmasq with Berth's command line for a network directory
// under state, configured to serve nothing (no DNS port, no DHCP range), run as says.
func startIdleDnsmasq(t *testing.T, state string, as int) (*exec.Cmd, string) {
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
	switch as {
	case asContainer:
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 1}}
	case asLocalUser:
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 100001, Gid: 100001}
		// The user must read its configuration: open the test's directories to it.
		for p := dir; p != filepath.Dir(filepath.Dir(state)); p = filepath.Dir(p) {
			err = os.Chmod(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		}
	}

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
// even though no bridge alias names it; one whose directory exists is left running, and
// one shaped like an orphan in another user namespace (what a container's root can run)
// or run by a local user is not taken for Berth's: berthd must not probe host paths it
// names, nor signal it.
func TestRemoveOrphanDnsmasqs(t *testing.T) {
	requireRoot(t)
	orphan, orphanDir := startIdleDnsmasq(t, t.TempDir(), asBerth)
	kept, _ := startIdleDnsmasq(t, t.TempDir(), asBerth)
	forged, forgedDir := startIdleDnsmasq(t, t.TempDir(), asContainer)
	local, localDir := startIdleDnsmasq(t, t.TempDir(), asLocalUser)

	for _, dir := range []string{orphanDir, forgedDir, localDir} {
		err := os.RemoveAll(filepath.Dir(filepath.Dir(dir)))
		if err != nil {
			t.Fatal(err)
		}
	}

	ours, err := os.Stat("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}

	owners := dnsmasqOwners()
	if dir, ok := dnsmasqNetworkDir(forged.Process.Pid, ours, owners); ok {
		t.Errorf("a dnsmasq in another user namespace (pid %d) counts as Berth's: berthd would stat %s on the host and signal it", forged.Process.Pid, dir)
	}

	if dir, ok := dnsmasqNetworkDir(local.Process.Pid, ours, owners); ok {
		t.Errorf("a local user's dnsmasq (pid %d) counts as Berth's: berthd would stat %s on the host and signal it", local.Process.Pid, dir)
	}

	RemoveOrphanDnsmasqs(quietLog())

	exited := make(chan error, 1)
	go func() { exited <- orphan.Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the dnsmasq of a deleted network directory (pid %d) still runs", orphan.Process.Pid)
	}

	// Running, not only unreaped: a zombie child still takes signal 0; its cmdline is
	// empty.
	time.Sleep(100 * time.Millisecond)
	for what, cmd := range map[string]*exec.Cmd{"of an existing network directory": kept, "in another user namespace": forged, "of a local user": local} {
		if !isOurProcess(cmd.Process.Pid, cmd.Args) {
			t.Errorf("the dnsmasq %s (pid %d) was stopped", what, cmd.Process.Pid)
		}
	}

	if dir, ok := dnsmasqNetworkDir(kept.Process.Pid, ours, owners); !ok {
		t.Fatalf("dnsmasqNetworkDir does not recognise Berth's dnsmasq (pid %d): %q", kept.Process.Pid, dir)
	}
}
