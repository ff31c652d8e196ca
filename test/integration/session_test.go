package integration

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
)

// The command lines of a container's helpers (lxd/nsexec), children of the daemon.
const (
	execServerCmdline = "berth-exec-server\x00__exec-server"
	fileServerCmdline = "berth-files\x00__files"
)

// TestSessionServers: a container's exec and file servers (lxd/session) are started by its
// first exec and file operation, reused by the next ones (one process of each, the same),
// and gone with the container: none is left once it stopped or was deleted, and the next
// start gets fresh ones.
func TestSessionServers(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "s1")
	if st := d.waitRunning("s1"); st != "running" {
		t.Fatalf("s1 is %q", st)
	}

	// Where cgroup2 is delegated (nsdelegate) every exec gets a one-shot helper instead.
	served := cgroup.CanPlaceInForeignGroups()
	daemon := d.cmd.Process.Pid

	use := func() {
		t.Helper()
		for range 3 {
			d.berth("exec", "s1", "--", "true")
			d.berth("file", "pull", "s1/etc/hostname", "-")
		}
	}

	use()

	files := children(daemon, fileServerCmdline)
	execs := children(daemon, execServerCmdline)
	if len(files) != 1 || (served && len(execs) != 1) {
		t.Fatalf("after three execs and pulls: file servers %v, exec servers %v; want one each", files, execs)
	}

	use()

	if f, e := children(daemon, fileServerCmdline), children(daemon, execServerCmdline); !slices.Equal(f, files) || !slices.Equal(e, execs) {
		t.Errorf("servers not reused: file servers %v then %v, exec servers %v then %v", files, f, execs, e)
	}

	d.berth("stop", "s1")
	waitNoChildren(t, daemon, "after the stop")

	d.berth("start", "s1")
	if st := d.waitRunning("s1"); st != "running" {
		t.Fatalf("s1 after restart is %q", st)
	}

	use()

	f, e := children(daemon, fileServerCmdline), children(daemon, execServerCmdline)
	if len(f) != 1 || (served && len(e) != 1) || slices.Equal(f, files) || (served && slices.Equal(e, execs)) {
		t.Errorf("after the restart: file servers %v (before %v), exec servers %v (before %v); want one fresh of each", f, files, e, execs)
	}

	d.berth("delete", "--force", "s1")
	waitNoChildren(t, daemon, "after the delete")
}

// children returns the pids of parent's children whose command line is cmdline.
func children(parent int, cmdline string) []int {
	var pids []int

	findHostProcess(func(pid int, cl string) bool {
		if cl != cmdline {
			return false
		}

		// stat: pid (comm) state ppid ...
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
		if len(f) > 1 && f[1] == fmt.Sprint(parent) {
			pids = append(pids, pid)
		}

		return false
	})

	slices.Sort(pids)

	return pids
}

// waitNoChildren waits up to 10 s for the daemon to have no exec or file server left.
func waitNoChildren(t *testing.T, parent int, when string) {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for {
		f, e := children(parent, fileServerCmdline), children(parent, execServerCmdline)
		if len(f)+len(e) == 0 {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("%s: file servers %v and exec servers %v still run", when, f, e)
		}

		time.Sleep(50 * time.Millisecond)
	}
}
