package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Attacks through disk devices, each from root inside a real container (nsenter into all
// its namespaces, user namespace included), each with the host target checked unchanged
// and a positive control showing the check would see the attack succeed.

// diskFile is a host file's owner, mode and content, to compare before and after.
type diskFile struct {
	uid, gid uint32
	mode     os.FileMode
	data     string
}

func diskStat(t *testing.T, p string) diskFile {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}

	sys := st.Sys().(*syscall.Stat_t)
	f := diskFile{uid: sys.Uid, gid: sys.Gid, mode: st.Mode()}
	if st.Mode().IsRegular() {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}

		f.data = string(b)
	}

	return f
}

// diskRootUID is the host uid of the container's root (its init's uid on the host).
func diskRootUID(t *testing.T, d *daemon, name string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.initPID(name)))
	if err != nil {
		t.Fatal(err)
	}

	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, _ := strconv.Atoi(f[1])
			if uid > 0 {
				return uid
			}
		}
	}

	t.Fatalf("no host uid for the root of %s", name)
	return 0
}

// diskSetattr is mount_setattr(2) from inside through perl (in every Debian), clearing
// the MOUNT_ATTR_* bits clr of the mount at path: exactly one flag changed, the others
// kept, so a refusal can only be the lock on that flag.
func diskSetattr(d *daemon, name, path string, clr int) (string, error) {
	script := `$b = pack("QQQQ", 0, $ARGV[1], 0, 0); $r = syscall(442, -100, $ARGV[0], 0, $b, 32); if ($r < 0) { print "refused: $!\n"; exit 1 } print "changed\n"`
	return d.inside(name, "perl", "-e", script, path, strconv.Itoa(clr))
}

const (
	mountAttrRdonly = 0x1
	mountAttrNosuid = 0x2
	mountAttrNodev  = 0x4
)

func writeHostFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	err := os.WriteFile(p, []byte(data), mode)
	if err == nil {
		err = os.Chmod(p, mode)
	}

	if err != nil {
		t.Fatal(err)
	}
}

func TestAttackDisk(t *testing.T) {
	parallel(t)
	// The host side: created before the daemon so that its cleanup runs after the
	// daemon's (which deletes the container and its mounts).
	base, err := os.MkdirTemp("/tmp", "bt-disk-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(base) })
	_ = os.Chmod(base, 0o755)

	ro := filepath.Join(base, "ro")
	share := filepath.Join(base, "share")
	shifted := filepath.Join(base, "shifted")
	secretDir := filepath.Join(base, "secret")
	for _, dir := range []string{ro, share, shifted} {
		err := os.Mkdir(dir, 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	err = os.Mkdir(secretDir, 0o700)
	if err != nil {
		t.Fatal(err)
	}

	writeHostFile(t, filepath.Join(ro, "hello"), "read only\n", 0o644)
	writeHostFile(t, filepath.Join(share, "secret"), "host secret\n", 0o600)
	writeHostFile(t, filepath.Join(share, "public"), "host public\n", 0o644)
	writeHostFile(t, filepath.Join(shifted, "rootonly"), "shifted secret\n", 0o600)
	writeHostFile(t, filepath.Join(secretDir, "key"), "top secret\n", 0o600)

	d := startDaemon(t)
	name := uniqueName("dsk")
	d.berth("init", "debian/12", name)
	// Added while stopped: set up at start.
	d.berth("config", "device", "add", name, "rostart", "disk", "source="+ro, "path=/mnt/rostart", "readonly=true")
	d.berth("start", name)
	d.waitRunning(name)

	uid := diskRootUID(t, d, name)
	// A share everyone may write to (root's, 0777): whoever the container's root is on
	// the host, it can write there; what it leaves shows who it is.
	err = os.Chmod(share, 0o777)
	if err == nil {
		err = os.Mkdir(filepath.Join(share, "sub"), 0o755)
	}

	if err != nil {
		t.Fatal(err)
	}

	// Added while running: hotplug.
	d.berth("config", "device", "add", name, "data", "disk", "source="+share, "path=/mnt/data")
	d.berth("config", "device", "add", name, "rohot", "disk", "source="+ro, "path=/mnt/rohot", "readonly=true")

	t.Run("setuid-through-share", func(t *testing.T) {
		out, err := d.inside(name, "sh", "-c", "cp /bin/sh /mnt/data/sh && chmod 4755 /mnt/data/sh && stat -c '%u %a' /mnt/data/sh")
		if err != nil {
			t.Fatalf("the container's root cannot write its own share: %v\n%s", err, out)
		}

		// Positive control: the file is there, setuid; the attack ran.
		f := diskStat(t, filepath.Join(share, "sh"))
		if f.mode&os.ModeSetuid == 0 {
			t.Fatalf("control: the setuid bit did not stick (%v)", f.mode)
		}

		if f.uid == 0 {
			t.Errorf("the container's root left a setuid-root shell on the host: %s/sh owned by 0, mode %v", share, f.mode)
		}

		if f.uid != uint32(uid) {
			t.Errorf("a file the container's root wrote is owned by %d on the host, want its own host uid %d", f.uid, uid)
		}

		opts, _ := d.inside(name, "findmnt", "-no", "OPTIONS", "/mnt/data")
		if !strings.Contains(opts, "nosuid") || !strings.Contains(opts, "nodev") {
			t.Errorf("the share is not nosuid,nodev inside: %s", opts)
		}
	})

	t.Run("host-root-file", func(t *testing.T) {
		before := diskStat(t, filepath.Join(share, "secret"))
		out, err := d.inside(name, "cat", "/mnt/data/secret")
		if err == nil || strings.Contains(out, "host secret") {
			t.Errorf("the container's root read a host root 0600 file: %v %q", err, out)
		}

		out, err = d.inside(name, "chmod", "644", "/mnt/data/secret")
		if err == nil {
			t.Errorf("the container's root changed a host root file's mode: %s", out)
		}

		// Positive control: the same read of a world-readable file works.
		out, err = d.inside(name, "cat", "/mnt/data/public")
		if err != nil || out != "host public\n" {
			t.Errorf("control: reading a public file of the share: %v %q", err, out)
		}

		out, _ = d.inside(name, "stat", "-c", "%u", "/mnt/data/secret")
		if strings.TrimSpace(out) != "65534" {
			t.Errorf("host root's file shows as uid %q inside, want nobody (65534)", out)
		}

		if after := diskStat(t, filepath.Join(share, "secret")); after != before {
			t.Errorf("host file changed: %+v -> %+v", before, after)
		}
	})

	// Control for the remount checks: a mount the container makes itself can be flipped
	// by the very same calls.
	out, err := d.inside(name, "sh", "-c", "mkdir -p /tmp/ctl && mount -t tmpfs -o ro,nosuid,nodev tmpfs /tmp/ctl")
	if err != nil {
		t.Fatalf("control mount: %v\n%s", err, out)
	}

	t.Run("readonly-locked", func(t *testing.T) {
		before := diskStat(t, filepath.Join(ro, "hello"))
		for _, mnt := range []string{"/mnt/rostart", "/mnt/rohot"} {
			out, err := diskSetattr(d, name, mnt, mountAttrRdonly)
			if err == nil {
				t.Errorf("%s: the container's root cleared read-only (mount_setattr): %s", mnt, out)
			}

			out, err = d.inside(name, "mount", "-o", "remount,bind,rw,nosuid,nodev", mnt)
			if err == nil {
				t.Errorf("%s: the container's root remounted read-write: %s", mnt, out)
			}

			out, err = d.inside(name, "sh", "-c", "echo pwned > "+mnt+"/hello; touch "+mnt+"/pwned")
			if err == nil {
				t.Errorf("%s: the container's root wrote to a read-only disk: %s", mnt, out)
			}
		}

		if _, err := os.Lstat(filepath.Join(ro, "pwned")); err == nil {
			t.Error("a file appeared in the read-only source")
		}

		if after := diskStat(t, filepath.Join(ro, "hello")); after != before {
			t.Errorf("read-only source changed: %+v -> %+v", before, after)
		}

		out, err := diskSetattr(d, name, "/tmp/ctl", mountAttrRdonly)
		if err != nil {
			t.Errorf("control: clearing read-only on the container's own mount: %v %s", err, out)
		}
	})

	t.Run("nosuid-nodev-locked", func(t *testing.T) {
		for _, mnt := range []string{"/mnt/rostart", "/mnt/data"} {
			for _, flag := range []int{mountAttrNosuid, mountAttrNodev} {
				out, err := diskSetattr(d, name, mnt, flag)
				if err == nil {
					t.Errorf("%s: the container's root cleared mount attribute %#x: %s", mnt, flag, out)
				}
			}

			out, err := d.inside(name, "mount", "-o", "remount,bind,suid,dev", mnt)
			if err == nil {
				t.Errorf("%s: the container's root remounted suid,dev: %s", mnt, out)
			}

			opts, _ := d.inside(name, "findmnt", "-no", "OPTIONS", mnt)
			if !strings.Contains(opts, "nosuid") || !strings.Contains(opts, "nodev") {
				t.Errorf("%s is not nosuid,nodev inside: %s", mnt, opts)
			}
		}

		out, err := diskSetattr(d, name, "/tmp/ctl", mountAttrNosuid)
		if err != nil {
			t.Errorf("control: clearing nosuid on the container's own mount: %v %s", err, out)
		}
	})

	t.Run("refused-sources", func(t *testing.T) {
		link := filepath.Join(base, "link")
		err := os.Symlink(ro, link)
		if err != nil {
			t.Fatal(err)
		}

		for _, c := range []struct{ source, want string }{
			{"/", "cannot be /"},
			{d.dir, "state directory"},
			{filepath.Join(d.dir, "storage-pools"), "state directory"},
			{"/proc", "proc"},
			{"/sys/kernel", "sysfs"},
			{"tmp", "absolute"},
			{filepath.Join(base, "missing"), "no such file"},
			{link, "symbolic link"},
			{filepath.Join(link, "hello"), "symbolic link"},
		} {
			out, err := d.berthErr("config", "device", "add", name, "bad", "disk", "source="+c.source, "path=/mnt/bad")
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("disk source %q: want an error with %q, got %v: %s", c.source, c.want, err, out)
			}

			if err == nil {
				_, _ = d.berthErr("config", "device", "remove", name, "bad")
			}
		}

		// A missing source is fine when it is optional.
		d.berth("config", "device", "add", name, "opt", "disk", "source="+filepath.Join(base, "missing"), "path=/mnt/opt", "required=false")
		d.berth("config", "device", "remove", name, "opt")
	})

	t.Run("shift-positive-control", func(t *testing.T) {
		// shift=true is the old behaviour, for trusted containers: the container's root
		// is host root on the source. The same checks as above see it.
		out, err := d.berthErr("config", "device", "add", name, "shifted", "disk", "source="+shifted, "path=/mnt/shifted", "shift=true")
		if err != nil {
			t.Fatalf("adding a shift=true disk: %v\n%s", err, out)
		}

		out, err = d.inside(name, "sh", "-c", "cat /mnt/shifted/rootonly && touch /mnt/shifted/byroot && stat -c %u /mnt/shifted/byroot && cp /bin/sh /mnt/shifted/sh && chmod 4755 /mnt/shifted/sh")
		if err != nil || !strings.Contains(out, "shifted secret") || !strings.Contains(out, "\n0\n") {
			t.Fatalf("shift=true: %v\n%s", err, out)
		}

		if f := diskStat(t, filepath.Join(shifted, "byroot")); f.uid != 0 {
			t.Errorf("shift=true: the container's root wrote as host uid %d, want 0", f.uid)
		}

		if f := diskStat(t, filepath.Join(shifted, "sh")); f.uid != 0 || f.mode&os.ModeSetuid == 0 {
			t.Errorf("control: the setuid check would not see a setuid-root file: %+v", f)
		}

		_ = os.Remove(filepath.Join(shifted, "sh"))

		opts, _ := d.inside(name, "findmnt", "-no", "OPTIONS", "/mnt/shifted")
		if !strings.Contains(opts, "idmapped") || !strings.Contains(opts, "nosuid") || !strings.Contains(opts, "nodev") {
			t.Errorf("shift=true disk is not idmapped,nosuid,nodev: %s", opts)
		}

		out, err = d.berthErr("config", "device", "remove", name, "shifted")
		if err != nil {
			t.Errorf("removing the shift=true disk: %v\n%s", err, out)
		}
	})

	// Last: it leaves the container stopped.
	t.Run("symlink-swap", func(t *testing.T) {
		before := diskStat(t, filepath.Join(secretDir, "key"))
		out, err := d.berthErr("config", "device", "add", name, "sub", "disk", "source="+filepath.Join(share, "sub"), "path=/mnt/sub")
		if err != nil {
			t.Fatalf("adding the disk: %v\n%s", err, out)
		}

		// Root inside replaces the source of "sub" (a directory of its own share) with a
		// symlink to a host directory it must not see.
		out, err = d.inside(name, "sh", "-c", "rmdir /mnt/data/sub && ln -s "+secretDir+" /mnt/data/sub")
		if err != nil {
			t.Fatalf("swapping the source: %v\n%s", err, out)
		}

		if target, err := os.Readlink(filepath.Join(share, "sub")); err != nil || target != secretDir {
			t.Fatalf("control: the source is not the container's symlink: %q %v", target, err)
		}

		out, err = d.berthErr("config", "device", "add", name, "again", "disk", "source="+filepath.Join(share, "sub"), "path=/mnt/again")
		if err == nil || !strings.Contains(out, "symbolic link") {
			t.Errorf("a disk added through the swapped symlink: %v %s", err, out)
		}

		out, err = d.berthErr("restart", "-f", name)
		if err == nil {
			got, _ := d.inside(name, "sh", "-c", "ls /mnt/sub; cat /mnt/sub/key")
			t.Errorf("the container started with its disk source swapped for a symlink; inside /mnt/sub:\n%s", got)
		} else if !strings.Contains(out, "symbolic link") {
			t.Errorf("start refused, but not for the symlink: %s", out)
		}

		if after := diskStat(t, filepath.Join(secretDir, "key")); after != before {
			t.Errorf("host secret changed: %+v -> %+v", before, after)
		}

		if st := diskStat(t, secretDir); st.uid != 0 || st.mode.Perm() != 0o700 {
			t.Errorf("host secret directory changed: %+v", st)
		}
	})

}
