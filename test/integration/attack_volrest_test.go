package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestAttackCopyShiftSymlinks: a copy within a btrfs pool moves owners in place, as host
// root, on a snapshot of a tree root inside the container built. Root inside plants
// symlinks to a host file and a host directory, both owned by its own host uid (so a
// followed chown would move them to the copy's range), a FIFO and a hard link; the copy
// finishes, the host file and directory keep their owner and mode, and the daemon lives.
// Control: the copy's own files do move (root inside the copy owns /root/marker).
func TestAttackCopyShiftSymlinks(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)
	onPoolsCleanup(t, d, lxc, "p1")

	must("storage", "create", "p1", "btrfs", "size=3GiB")
	must("launch", "debian/12", "c1", "-s", "p1")
	d.waitRunning("c1")

	base, err := strconv.Atoi(strings.TrimSpace(must("config", "get", "c1", "volatile.idmap.base")))
	if err != nil {
		t.Fatal(err)
	}

	host := t.TempDir()
	victim := filepath.Join(host, "victim")
	victimDir := filepath.Join(host, "victim-dir")
	if err := os.WriteFile(victim, []byte("host"), 0o640); err != nil {
		t.Fatal(err)
	}

	if err := os.Mkdir(victimDir, 0o750); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{victim, victimDir} {
		if err := os.Lchown(p, base, base); err != nil {
			t.Fatal(err)
		}
	}

	pid := d.cmd.Process.Pid
	must("exec", "c1", "--", "sh", "-c", "echo m > /root/marker && ln -s "+victim+" /root/esc && ln -s "+victimDir+" /root/escdir && ln -s ../../../../../../../.."+victim+" /root/rel && mkfifo /root/fifo && ln /root/marker /root/hard && sync")
	must("copy", "c1", "c2")
	if !d.waitLog("how=\"btrfs snapshot\"") { // the line reaches d.log through a pipe
		t.Fatal("the copy was not a btrfs snapshot: the attack did not meet the in-place shift")
	}

	for _, p := range []string{victim, victimDir} {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}

		if int(st.Uid) != base || int(st.Gid) != base {
			t.Errorf("host %s owned by %d:%d after the copy, was %d:%d", p, st.Uid, st.Gid, base, base)
		}
	}

	if st, _ := os.Stat(victim); st.Mode().Perm() != 0o640 {
		t.Errorf("host victim's mode became %o", st.Mode().Perm())
	}

	if d.cmd == nil || d.cmd.Process.Pid != pid || d.cmd.ProcessState != nil {
		t.Error("the daemon is not the one that started the copy")
	}

	must("start", "c2")
	d.waitRunning("c2")
	if got := strings.TrimSpace(must("exec", "c2", "--", "stat", "-c", "%u:%g %h", "/root/marker")); got != "0:0 2" {
		t.Errorf("control: /root/marker in the copy is %q, want 0:0 with its hard link (2)", got)
	}
}
