package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/storage"
	"golang.org/x/sys/unix"
)

// floorScript boots a rootfs with util-linux alone, as close to what berthd does as shell
// allows: same id map and namespaces, a delegated cgroup2 directory as cgroup namespace
// root, the same API filesystems, the same capabilities dropped; chroot instead of
// pivot_root and no console pty. It is the floor under Berth's own start-up cost.
const floorScript = `
set -e
root=$1 cg=$2 base=$3
echo $$ > "$cg/cgroup.procs"
exec unshare --map-users=$base,0,65536 --map-groups=$base,0,65536 --setgroups allow --setuid 0 --setgid 0 \
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

// benchFloor boots the rootfs of a real (stopped) instance with floorScript, runs times.
func benchFloor(b *berthd, r *report) error {
	_, err := b.berth("launch", "debian/12", "floor")
	if err != nil {
		return err
	}

	_, err = b.berth("stop", "floor")
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("delete", "floor") }()

	ids, err := instanceIDs(b, "floor")
	if err != nil {
		return err
	}

	pool, err := storage.Load("overlay", filepath.Join(b.dir, "storage-pools", "default"), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}

	layout, err := cgroup.Detect()
	if err != nil {
		return err
	}

	for i := 0; i < *runs; i++ {
		d, err := bootFloor(pool, layout, ids, "floor", nil)
		if err != nil {
			return err
		}

		r.add("floor: unshare+chroot -> running", d)
	}

	return nil
}

func instanceIDs(b *berthd, name string) (idmap.Set, error) {
	out, err := b.berth("list", name, "--format", "json")
	if err != nil {
		return idmap.Set{}, err
	}

	var list []struct {
		Config map[string]string `json:"config"`
	}

	err = json.Unmarshal([]byte(out), &list)
	if err != nil || len(list) != 1 {
		return idmap.Set{}, fmt.Errorf("reading %s's config: %v", name, err)
	}

	base, err := strconv.ParseInt(list[0].Config["volatile.idmap.base"], 10, 64)
	if err != nil {
		return idmap.Set{}, err
	}

	return idmap.Set{HostUID: base, HostGID: base, Size: idmap.DefaultSize}, nil
}

// bootFloor boots the stopped instance name once and returns the time from the start of unshare to "running";
// running (if not nil) is called then, with systemd's pid and the start on the monotonic
// clock.
func bootFloor(pool storage.Driver, layout cgroup.Layout, ids idmap.Set, name string, running func(pid int, t0 time.Duration) error) (time.Duration, error) {
	rootfs, err := pool.MountInstance(name, ids)
	if err != nil {
		return 0, err
	}

	defer func() { _ = pool.UnmountInstance(name) }()

	g, err := cgroup.New(fmt.Sprintf("floor-%d", os.Getpid()), layout)
	if err != nil {
		return 0, err
	}

	err = g.Create()
	if err != nil {
		return 0, err
	}

	defer func() { _ = g.Remove() }()

	err = g.Delegate(int(ids.HostUID), int(ids.HostGID))
	if err != nil {
		return 0, err
	}

	t0, m0 := time.Now(), monotonic()
	var out bytes.Buffer
	cmd := exec.Command("/bin/sh", "-c", floorScript, "floor", rootfs, g.NamespacePath(), strconv.FormatInt(ids.HostUID, 10))
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	if err != nil {
		return 0, err
	}

	defer func() { _ = cmd.Wait() }()
	pid, err := floorInit(cmd.Process.Pid)
	if err != nil {
		_ = g.Remove()
		return 0, fmt.Errorf("%w: %s", err, out.String())
	}

	err = waitRunning(pid)
	d := time.Since(t0)
	if err == nil && running != nil {
		err = running(pid, m0)
	}

	_ = unix.Kill(pid, unix.Signal(37)) // SIGRTMIN+3: systemd powers off
	return d, err
}

// floorInit finds unshare's forked child that is PID 1 of the new namespace, once it has
// become systemd.
func floorInit(parent int) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", parent, parent))
		for _, c := range strings.Fields(string(b)) {
			st, _ := os.ReadFile("/proc/" + c + "/status")
			comm, _ := os.ReadFile("/proc/" + c + "/comm")
			if strings.Contains(string(st), "\nNSpid:\t"+c+"\t1\n") && strings.TrimSpace(string(comm)) == "systemd" {
				return strconv.Atoi(c)
			}
		}

		time.Sleep(2 * time.Millisecond)
	}

	return 0, fmt.Errorf("no floor init appeared")
}
