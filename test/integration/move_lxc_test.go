package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMovePoolLXC: with the stock lxc (instance_pool_move), lxc move c1 --storage p2
// moves a stopped container under its own name: its data and its snapshot are on p2 and
// no longer on the default pool, its identity (volatile.uuid) is the same, it starts
// there and restores its snapshot from there. A move that fails part-way (the target
// pool's place for the instance taken) leaves the source whole and nothing on the
// target; a running one is refused; lxc move c1 c9 --storage default moves and renames.
func TestMovePoolLXC(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)
	onPoolsCleanup(t, d, lxc, "p2")

	must("storage", "create", "p2", "dir")
	def := filepath.Join(d.dir, "storage-pools", "default")
	p2 := filepath.Join(d.dir, "storage-pools", "p2")

	inside := func(name, script string) string {
		t.Helper()
		return strings.TrimSpace(must("exec", name, "--", "sh", "-c", script))
	}

	must("launch", "debian/12", "c1")
	d.waitRunning("c1")
	inside("c1", "echo one > /root/marker; sync")
	must("snapshot", "c1", "s1")
	inside("c1", "echo two > /root/marker; sync")
	must("stop", "-f", "c1")
	uuid := strings.TrimSpace(must("config", "get", "c1", "volatile.uuid"))

	must("move", "c1", "--storage", "p2")

	if _, err := os.Lstat(filepath.Join(p2, "containers", "c1", "rootfs")); err != nil {
		t.Errorf("c1 has no storage on p2 after the move: %v", err)
	}

	if _, err := os.Lstat(filepath.Join(p2, "containers-snapshots", "c1", "s1")); err != nil {
		t.Errorf("c1's snapshot s1 is not on p2: %v", err)
	}

	for _, p := range []string{"containers/c1", "containers-snapshots/c1/s1"} {
		if _, err := os.Lstat(filepath.Join(def, p)); err == nil {
			t.Errorf("the default pool still has %s after the move", p)
		}
	}

	if !usedBy(must, "p2", "/1.0/instances/c1") || usedBy(must, "default", "/1.0/instances/c1") {
		t.Error("used_by: c1 is not listed on p2 only")
	}

	if got := strings.TrimSpace(must("config", "get", "c1", "volatile.uuid")); got != uuid {
		t.Errorf("volatile.uuid changed by the move: %q, was %q", got, uuid)
	}

	must("start", "c1")
	d.waitRunning("c1")
	if got := inside("c1", "cat /root/marker"); got != "two" {
		t.Errorf("after the move c1 reads %q, want two", got)
	}

	// A running instance is not moved.
	out, err := lxc("move", "c1", "--storage", "default")
	if err == nil || !strings.Contains(out, "running") {
		t.Errorf("moving a running instance: %v\n%s", err, out)
	}

	must("stop", "-f", "c1")
	must("restore", "c1", "s1")
	must("start", "c1")
	d.waitRunning("c1")
	if got := inside("c1", "cat /root/marker"); got != "one" {
		t.Errorf("after restoring s1 on p2 c1 reads %q, want one", got)
	}

	if got := strings.TrimSpace(must("config", "device", "get", "c1", "root", "pool")); got != "p2" {
		t.Errorf("after the restore c1's root disk is on %q, want p2", got)
	}

	must("stop", "-f", "c1")

	// A move that fails once the data is copied: the target pool's place for c1 is
	// taken. c1 stays whole on p2 with its snapshot, nothing of it is left on default.
	blocker := filepath.Join(def, "containers", "c1")
	err = os.WriteFile(blocker, []byte("x"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	out, err = lxc("move", "c1", "--storage", "default")
	_ = os.Remove(blocker)
	if err == nil {
		t.Fatalf("a move onto a taken place worked:\n%s", out)
	}

	if got := strings.TrimSpace(must("config", "device", "get", "c1", "root", "pool")); got != "p2" {
		t.Errorf("after a failed move c1's root disk is on %q, want p2", got)
	}

	if _, err := os.Lstat(filepath.Join(p2, "containers-snapshots", "c1", "s1")); err != nil {
		t.Errorf("after a failed move c1's snapshot is gone from p2: %v", err)
	}

	if _, err := os.Lstat(filepath.Join(def, "containers-snapshots", "c1")); err == nil {
		t.Error("a failed move left c1's snapshots on the default pool")
	}

	must("start", "c1")
	d.waitRunning("c1")
	if got := inside("c1", "cat /root/marker"); got != "one" {
		t.Errorf("after a failed move c1 reads %q, want one", got)
	}

	must("stop", "-f", "c1")

	// Move and rename at once.
	must("move", "c1", "c9", "--storage", "default")
	if _, err := os.Lstat(filepath.Join(def, "containers", "c9", "rootfs")); err != nil {
		t.Errorf("c9 has no storage on default: %v", err)
	}

	if _, err := os.Lstat(filepath.Join(p2, "containers", "c1")); err == nil {
		t.Error("p2 still holds c1 after it moved to default as c9")
	}

	if out := must("list", "--format", "csv", "-c", "n"); strings.Contains(out, "c1\n") || !strings.Contains(out, "c9") {
		t.Errorf("lxc list after the move and rename:\n%s", out)
	}
}

// TestMoveProjectsLXC: with the stock lxc, instances are copied (container_copy_project)
// and moved (instance_project_move) between projects. lxc copy c1 c2 --target-project B
// makes B's c2 from A's c1 with its data and snapshot; lxc copy c1 c1 --project A
// --target-project B gives B a c1 of its own beside A's; the target's limits.instances
// refuses a copy and a move past it, naming the limit, and its restrictions a source
// with a privileged setting, and each refusal leaves the source as it was; lxc move c3
// --target-project B moves a stopped instance, data and snapshot, keeping its
// volatile.uuid, after which A no longer has it.
func TestMoveProjectsLXC(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)

	// A launches the default project's debian/12: it shares the default project's images.
	l.must("project", "create", "A", "-c", "features.images=false")
	l.must("project", "create", "B", "-c", "features.images=false")
	t.Cleanup(func() {
		for _, p := range []string{"A", "B"} {
			for _, n := range []string{"c1", "c2", "c3", "c4"} {
				_, _ = l.run("delete", "-f", n, "--project", p)
			}

			_, _ = l.run("project", "delete", p)
		}
	})

	// --project right after the verb: anything after "--" goes to the command inside.
	in := func(proj string, args ...string) string {
		t.Helper()
		return l.must(append([]string{args[0], "--project", proj}, args[1:]...)...)
	}

	inA := func(args ...string) string { t.Helper(); return in("A", args...) }
	inB := func(args ...string) string { t.Helper(); return in("B", args...) }

	inA("launch", "debian/12", "c1")
	inA("exec", "c1", "--", "sh", "-c", "echo one > /root/marker; sync")
	inA("snapshot", "c1", "s1")
	inA("exec", "c1", "--", "sh", "-c", "echo two > /root/marker; sync")

	// A copy to another name in B, from a running source.
	l.must("copy", "c1", "c2", "--project", "A", "--target-project", "B")
	if out := inB("list", "--format", "csv", "-c", "n"); !strings.Contains(out, "c2") {
		t.Fatalf("B after the copy:\n%s", out)
	}

	if out := inB("info", "c2"); !strings.Contains(out, "s1") {
		t.Errorf("B's c2 has no snapshot s1:\n%s", out)
	}

	// The same name in B as in A.
	l.must("copy", "c1", "c1", "--project", "A", "--target-project", "B")
	for _, n := range []string{"c1", "c2"} {
		inB("start", n)
		if got := strings.TrimSpace(inB("exec", n, "--", "cat", "/root/marker")); got != "two" {
			t.Errorf("B's %s reads %q, want two", n, got)
		}
	}

	if _, err := os.Stat(filepath.Join(d.dir, "instances", "B_c1")); err != nil {
		t.Errorf("B's c1 has no directory of its own (B_c1): %v", err)
	}

	// B's limits: a third instance is refused, by a copy as by a move.
	inB("stop", "-f", "c1")
	inB("stop", "-f", "c2")
	l.must("project", "set", "B", "limits.instances=2")
	out := l.fails("copy", "c1", "c3", "--project", "A", "--target-project", "B")
	if !strings.Contains(out, "limits.instances=2") {
		t.Errorf("a copy past B's limits.instances refused with:\n%s", out)
	}

	inA("init", "debian/12", "c3")
	inA("exec", "c1", "--", "true") // A's c1 still runs
	out = l.fails("move", "c3", "--project", "A", "--target-project", "B")
	if !strings.Contains(out, "limits.instances=2") {
		t.Errorf("a move past B's limits.instances refused with:\n%s", out)
	}

	if out := inA("list", "--format", "csv", "-c", "n"); !strings.Contains(out, "c3") {
		t.Errorf("A lost c3 to a refused move:\n%s", out)
	}

	// B's restrictions: a source B would not allow is refused.
	l.must("project", "unset", "B", "limits.instances")
	l.must("project", "set", "B", "restricted=true")
	inA("config", "set", "c3", "security.nesting=true")
	out = l.fails("move", "c3", "--project", "A", "--target-project", "B")
	if !strings.Contains(out, "security.nesting") {
		t.Errorf("a move of a nesting container into restricted B refused with:\n%s", out)
	}

	out = l.fails("copy", "c3", "c4", "--project", "A", "--target-project", "B")
	if !strings.Contains(out, "security.nesting") {
		t.Errorf("a copy of a nesting container into restricted B refused with:\n%s", out)
	}

	// The move itself.
	inA("config", "unset", "c3", "security.nesting")
	inA("snapshot", "c3", "snap0")
	l.must("query", "--wait", "-X", "POST", "-d", `{"name":"b0"}`, "/1.0/instances/c3/backups?project=A")
	uuid := strings.TrimSpace(inA("config", "get", "c3", "volatile.uuid"))
	l.must("move", "c3", "--project", "A", "--target-project", "B")
	if out := l.must("query", "/1.0/instances/c3/backups?project=B"); !strings.Contains(out, "b0") {
		t.Errorf("the moved c3's backup b0 did not come along:\n%s", out)
	}
	if out := inA("list", "--format", "csv", "-c", "n"); strings.Contains(out, "c3") {
		t.Errorf("A still lists c3 after it moved to B:\n%s", out)
	}

	if got := strings.TrimSpace(inB("config", "get", "c3", "volatile.uuid")); got != uuid {
		t.Errorf("volatile.uuid of the moved c3: %q, was %q", got, uuid)
	}

	if out := inB("info", "c3"); !strings.Contains(out, "snap0") {
		t.Errorf("the moved c3 has no snapshot snap0:\n%s", out)
	}

	for _, p := range []string{"instances/A_c3", "backups/A_c3"} {
		if _, err := os.Stat(filepath.Join(d.dir, p)); err == nil {
			t.Errorf("%s is left on the host after the move", p)
		}
	}

	inB("start", "c3")
	if got := strings.TrimSpace(inB("exec", "c3", "--", "hostname")); got != "c3" {
		t.Errorf("the moved c3's hostname is %q", got)
	}
}
