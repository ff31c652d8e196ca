package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// Attacks on the container's mount tree, from its root: the masks over /proc and /sys,
// the read-only mounts and the console must arrive locked by the kernel (they are built
// by host root and copied into the container's user namespace), so that root inside can
// neither unmount nor remount them. Positive control: the same operations on mounts the
// container makes itself succeed.
func TestAttackMountMasks(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c1")

	// systemd copes with not being able to mount a fresh procfs or sysfs.
	state := d.waitRunning("c1")
	if state != "running" {
		failed, _ := d.inside("c1", "systemctl", "--failed", "--no-pager")
		t.Fatalf("systemctl is-system-running says %q, want running\n%s", state, failed)
	}

	t.Run("control", func(t *testing.T) {
		// Proves that the commands below would succeed against an unlocked mount.
		out, err := d.inside("c1", "sh", "-ec", sbRemount+`
			mkdir -p /mnt/scratch
			mount -t tmpfs -o size=1m scratch /mnt/scratch
			touch /mnt/scratch/f
			mount --bind /mnt/scratch/f /mnt/scratch/f
			umount /mnt/scratch/f
			mount --bind -o ro /mnt/scratch /mnt/scratch
			mount -o remount,rw,bind /mnt/scratch
			umount -l /mnt/scratch
			sb_remount /mnt/scratch 33 size=2m
			sb_remount /mnt/scratch 32 size=3m
			umount /mnt/scratch`)
		if err != nil {
			t.Fatalf("the same operations on the container's own mounts failed: %v\n%s", err, out)
		}
	})

	attacks := []struct {
		name   string
		attack string
	}{
		{"remount-proc-sys-rw", "mount -o remount,rw /proc/sys"},
		{"remount-proc-sys-rw-bind", "mount -o remount,rw,bind /proc/sys"},
		{"remount-proc-sys-rw-sb", "sb_remount /proc/sys 32 ''"},
		{"remount-proc-irq-rw", "mount -o remount,rw,bind /proc/irq"},
		{"umount-proc-bus", "umount /proc/bus"},
		{"umount-firmware", "umount /sys/firmware"},
		{"remount-sys-rw-bind", "mount -o remount,rw,bind /sys"},
		{"remount-sys-rw-sb", "sb_remount /sys 32 ''"},
		{"umount-console", "umount -l /dev/console"},
		{"remount-console-exec", "mount -o remount,bind,exec,suid /dev/console"},
		{"remount-dev-suid", "mount -o remount,bind,suid /dev"},
		{"fresh-procfs", "mkdir -p /mnt/p && mount -t proc proc /mnt/p"},
		{"fresh-sysfs", "mkdir -p /mnt/s && mount -t sysfs sysfs /mnt/s"},
		{"bind-uncovers-proc", "mkdir -p /mnt/b && mount --bind /proc /mnt/b && cat /mnt/b/timer_list | grep -q ."},
	}

	// Each mask this kernel has (kcore, sysrq-trigger and others are configurable).
	for _, m := range presentMasks() {
		attacks = append(attacks,
			struct{ name, attack string }{"umount" + strings.ReplaceAll(m, "/", "-"), "umount " + m},
			struct{ name, attack string }{"lazy-umount" + strings.ReplaceAll(m, "/", "-"), "umount -l " + m})
	}

	// Last, as they would take every other target with them on a kernel that let them.
	attacks = append(attacks, []struct{ name, attack string }{
		{"umount-proc-sys", "umount -l /proc/sys"},
		{"umount-sys", "umount -l /sys"},
		{"umount-proc", "umount -l /proc"},
	}...)

	for _, c := range attacks {
		t.Run(c.name, func(t *testing.T) {
			out, err := d.inside("c1", "sh", "-c", sbRemount+c.attack)
			if err == nil {
				t.Errorf("%q succeeded as the container's root:\n%s", c.attack, out)
			}

			checkMasks(t, d, "c1")
		})
	}
}

// sbRemount defines sb_remount PATH FLAGS DATA in a shell script: mount(2) with the
// superblock remount flags as given (32 is MS_REMOUNT, 33 adds MS_RDONLY), through perl,
// since util-linux's mount adds the options it reads from mountinfo, and tmpfs shows its
// uid= there as the host sees it, which the container's remount then refuses.
var sbRemount = fmt.Sprintf(`sb_remount() { perl -e 'syscall(%d, 0, $ARGV[0], 0, $ARGV[1]+0, $ARGV[2]) == 0 or die "$!\n"' "$@"; }
`, map[string]int{"amd64": 165, "arm64": 40}[runtime.GOARCH])

// presentMasks lists the masked /proc files and directories that exist on this host.
func presentMasks() []string {
	var out []string
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/proc/scsi", "/proc/sysrq-trigger"} {
		_, err := os.Stat(p)
		if err == nil {
			out = append(out, p)
		}
	}

	return out
}

// checkMasks asserts that the masks and read-only mounts are still in place.
func checkMasks(t *testing.T, d *daemon, name string) {
	t.Helper()

	// Masked files read as /dev/null, masked directories are empty, read-only ones
	// cannot be written.
	out, err := d.inside(name, "sh", "-c", `for m in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug /proc/acpi /proc/scsi /sys/firmware; do
			if [ -d $m ]; then ls -A $m; elif [ -e $m ]; then head -c 1 $m; fi
		done | wc -c`)
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Errorf("a mask is gone: masked files and directories gave %q bytes (%v)", out, err)
	}

	opts := mountOptions(t, d, name)
	for _, c := range []struct{ path, want string }{
		{"/proc/sys", "ro"}, {"/proc/irq", "ro"}, {"/proc/bus", "ro"}, {"/sys", "ro"}, {"/dev/console", "noexec"}, {"/dev", "nosuid"},
	} {
		if !strings.Contains(","+opts[c.path]+",", ","+c.want+",") {
			t.Errorf("%s mounted with %q, want %s", c.path, opts[c.path], c.want)
		}
	}

	// The write the read-only mount prevents.
	_, err = d.inside(name, "sh", "-c", "echo x > /proc/sys/kernel/domainname")
	if err == nil {
		t.Error("/proc/sys/kernel/domainname is writable")
	}
}

// mountOptions maps each mount point inside to the per-mount options of its topmost
// mount (mountinfo lists later mounts last).
func mountOptions(t *testing.T, d *daemon, name string) map[string]string {
	t.Helper()

	out, err := d.inside(name, "cat", "/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("reading mountinfo: %v\n%s", err, out)
	}

	mounts, err := mountinfo.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}

	opts := map[string]string{}
	for _, m := range mounts {
		opts[m.MountPoint] = m.Options
	}

	return opts
}

// Host users other than root must not read inside a container: its storage directory is
// traversable by its own root only, the device staging directory by host root only, and
// an instance created before that (mode 0711) is fixed at its next start.
func TestAttackHostUserReadsRootfs(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c1")

	// Readable by anyone on the host: only the staging directory can keep
	// other users out of the container's copy.
	share := t.TempDir()
	err := os.Chmod(share, 0o755)
	if err == nil {
		err = os.WriteFile(filepath.Join(share, "f"), []byte("x"), 0o644)
	}

	if err != nil {
		t.Fatal(err)
	}

	d.berth("config", "device", "add", "c1", "share", "disk", "source="+share, "path=/mnt/share")

	dir := filepath.Join(d.dir, "storage-pools", "default", "containers", "c1")
	etc := filepath.Join(dir, "rootfs", "etc")
	stage := filepath.Join(d.dir, "instances", "c1", "devices")

	asNobody := func(args ...string) (string, error) {
		full := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)
		out, err := exec.Command("setpriv", full...).CombinedOutput()
		return string(out), err
	}

	check := func(t *testing.T) {
		t.Helper()

		// Positive control: root lists both.
		for _, p := range []string{etc, stage} {
			_, err := os.ReadDir(p)
			if err != nil {
				t.Fatalf("root cannot list %s: %v", p, err)
			}
		}

		for _, p := range []string{etc, filepath.Join(stage, "share")} {
			out, err := asNobody("ls", p)
			if err == nil {
				t.Errorf("uid 65534 listed %s:\n%s", p, out)
			}
		}

		out, err := asNobody("cat", filepath.Join(etc, "hostname"))
		if err == nil {
			t.Errorf("uid 65534 read the container's /etc/hostname: %q", out)
		}

		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}

		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: others may search it", dir, st.Mode().Perm())
		}
	}

	t.Run("fresh", check)

	t.Run("old-modes-fixed-at-start", func(t *testing.T) {
		d.berth("stop", "-f", "c1")

		for _, p := range []string{dir, stage} {
			err := os.Chmod(p, 0o711)
			if err != nil {
				t.Fatal(err)
			}
		}

		d.berth("start", "c1")
		check(t)
	})

	// The container still boots and reads its share (it reaches its rootfs and the
	// staged mount without the host's permission bits on the way).
	state := d.waitRunning("c1")
	if state != "running" {
		t.Fatalf("systemctl is-system-running says %q, want running", state)
	}

	out, err := d.inside("c1", "cat", "/mnt/share/f")
	if err != nil || out != "x" {
		t.Fatalf("reading the share inside: %q, %v", out, err)
	}
}

// One container cannot take every pty of the host: its devpts instance has max=1024.
func TestAttackPtyExhaustion(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c1")

	// Open /dev/ptmx until it fails; print how many and why. A little over
	// the limit only: other containers on this host need ptys too.
	out, err := d.inside("c1", "sh", "-c", `ulimit -n 2048 && perl -e '
		my @fds;
		for my $i (1..1100) {
			open(my $f, "+<", "/dev/ptmx") or do { print scalar(@fds), " $!\n"; exit 0 };
			push @fds, $f;
		}
		print scalar(@fds), " none\n";'`)
	if err != nil {
		t.Fatalf("opening ptys: %v\n%s", err, out)
	}

	f := strings.SplitN(strings.TrimSpace(out), " ", 2)
	n, _ := strconv.Atoi(f[0])

	// Positive control: a good number did open, so the failure is the limit.
	if n < 1000 || n > 1024 || len(f) < 2 || !strings.Contains(f[1], "No space left on device") {
		t.Fatalf("opened %q ptys, want at most 1024 and then ENOSPC", out)
	}
}

// The tmpfs mounts are bounded by the container's memory limit, not the host's RAM.
func TestAttackTmpfsBeyondMemoryLimit(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c1", "-c", "limits.memory=256MiB")

	for _, p := range []string{"/tmp", "/run", "/dev/shm"} {
		out, err := d.inside("c1", "df", "--output=size", "-B1", p)
		if err != nil {
			t.Fatalf("df %s: %v\n%s", p, err, out)
		}

		f := strings.Fields(out)
		size, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("df %s said %q", p, out)
		}

		if size > 256<<20 || size <= 0 {
			t.Errorf("%s is %d bytes, want at most limits.memory (256 MiB)", p, size)
		}
	}

	// The container cannot raise the bound: the mounts are the host's, locked.
	// (TestAttackMountMasks/control shows the same remount of its own tmpfs works.)
	out, err := d.inside("c1", "sh", "-c", sbRemount+"sb_remount /tmp 32 size=4g")
	if err == nil {
		t.Errorf("remounting /tmp with size=4g succeeded:\n%s", out)
	}

	// Control: with no limit, /tmp takes its share of the host's memory.
	d.berth("launch", "debian/12", "c2")

	out, err = d.inside("c2", "df", "--output=size", "-B1", "/tmp")
	f := strings.Fields(out)
	size, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil || size <= 256<<20 {
		t.Fatalf("without a limit /tmp is %d bytes (%v), want half the host's memory", size, err)
	}
}
