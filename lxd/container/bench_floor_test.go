package container

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"golang.org/x/sys/unix"
)

// floorScript boots the same image with util-linux alone, as close to what
// the runtime does as shell allows: same id map and namespaces, a delegated
// cgroup2 directory as cgroup namespace root, the same API filesystems,
// CAP_SYS_RAWIO dropped; chroot instead of pivot_root and no console pty.
// It is the floor against which the runtime's own start-up cost is read.
const floorScript = `
set -e
root=$1 cg=$2
echo $$ > "$cg/cgroup.procs"
exec unshare --map-users=1000000,0,65536 --map-groups=1000000,0,65536 --setgroups allow --setuid 0 --setgid 0 \
	--pid --fork --mount --uts --ipc --net --cgroup --propagation slave \
	--mount-proc="$root/proc" -- /bin/sh -e -c '
root=$1
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=755,nosuid,size=4m tmpfs "$root/dev"
for n in null zero full random urandom tty; do
	touch "$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
hostname floor
exec setpriv --bounding-set=-sys_rawio,-sys_module,-sys_time,-mac_admin,-mac_override \
	chroot "$root" /lib/systemd/systemd
' floor "$root"
`

// TestBootFloor measures the util-linux floor. It runs with BERTH_BENCH=1
// or in strict (CI) mode, where it also proves the floor boots at all.
func TestBootFloor(t *testing.T) {
	if os.Getenv("BERTH_BENCH") == "" && !strict() {
		t.Skip("benchmark: set BERTH_BENCH=1 to measure the util-linux boot floor")
	}

	needRoot(t)

	l, err := cgroup.Detect()
	if err != nil || l.Unified == "" {
		t.Skipf("needs a cgroup2 hierarchy (%v)", err)
	}

	rootfs := overlayRootfs(t, "floor")

	g, err := cgroup.New(fmt.Sprintf("floor-%d", os.Getpid()), l)
	if err != nil {
		t.Fatal(err)
	}

	err = g.Create()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = g.Remove() })

	err = g.Delegate(testHostID, testHostID)
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()

	var out bytes.Buffer

	cmd := exec.Command("/bin/sh", "-c", floorScript, "floor", rootfs, g.NamespacePath())
	cmd.Stdout = &out
	cmd.Stderr = &out

	err = cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = g.Remove()
		_ = cmd.Wait()

		if t.Failed() {
			t.Logf("floor output:\n%s", out.String())
		}
	})

	// The script execs unshare, whose forked child becomes systemd (it
	// also forks newuidmap helpers: look for the one that is PID 1 inside).
	var pid int

	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		for _, c := range strings.Fields(string(b)) {
			st, _ := os.ReadFile("/proc/" + c + "/status")
			if strings.Contains(string(st), "\nNSpid:\t"+c+"\t1\n") {
				pid, _ = strconv.Atoi(c)
			}
		}

		if time.Now().After(deadline) {
			t.Fatal("no floor init appeared")
		}

		time.Sleep(5 * time.Millisecond)
	}

	// Wait for the exec of systemd itself (before it, /proc/<pid>/root is
	// still the host's).
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "systemd" {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("floor init never became systemd (comm %q)", comm)
		}

		time.Sleep(2 * time.Millisecond)
	}

	state := waitRunning(t, pid)

	t.Logf("MEASURE floor boot: start -> is-system-running=%s in %s", state, time.Since(t0).Round(time.Millisecond))

	if state != "running" {
		t.Errorf("floor boot reached %q", state)
	}

	_ = unix.Kill(pid, sigPowerOff)

	done := make(chan struct{})

	go func() { _ = cmd.Wait(); close(done) }()

	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Error("floor container did not halt")
	}

}
