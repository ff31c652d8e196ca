// Package lxcfs runs Debian's lxcfs for berthd's containers and lists the files that
// containers get from it: with /proc/meminfo, /proc/cpuinfo, /proc/stat, /proc/uptime,
// ... bound over their own, free, top, nproc and uptime inside a container show its
// cgroup limits and its own uptime, as on a VM.
//
// lxcfs answers each read from the cgroups of the reading process (it reads
// /proc/<pid>/cgroup of the caller, in the host's view). On a hybrid host a container's
// processes stay in /berth/<name> in the v1 memory, cpu and cpuset hierarchies, which is
// where berthd writes the limits; the container's systemd only moves them within the
// cgroup2 tree. Uptime comes from the start time of the caller's pid namespace's init.
//
// One lxcfs serves the whole host (like LXD's /var/lib/lxcfs): it is started detached,
// with a pid file, so it outlives berthd restarts, and a daemon starting later adopts it.
package lxcfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// DefaultDir is where lxcfs is mounted unless $BERTH_LXCFS_DIR says otherwise.
const DefaultDir = "/var/lib/berth-lxcfs"

// Dir returns the lxcfs mount point in use.
func Dir() string {
	d := os.Getenv("BERTH_LXCFS_DIR")
	if d == "" {
		return DefaultDir
	}

	return d
}

// procFiles are bound over the container's /proc when lxcfs provides them (lxcfs 5.0's
// list, as LXD binds them).
var procFiles = []string{"cpuinfo", "diskstats", "loadavg", "meminfo", "stat", "swaps", "uptime", "slabinfo"}

// fuseSuperMagic is statfs's f_type of a FUSE filesystem.
const fuseSuperMagic = 0x65735546

// Mounted reports whether a live lxcfs is mounted at dir. A dead one (its process gone)
// answers ENOTCONN.
func Mounted(dir string) bool {
	var st unix.Statfs_t
	err := unix.Statfs(dir, &st)
	if err != nil || st.Type != fuseSuperMagic {
		return false
	}

	_, err = os.Stat(filepath.Join(dir, "proc", "meminfo"))
	return err == nil
}

// Binds lists the bind mounts that give a container lxcfs's view, or none when lxcfs is
// not running at dir. Which files lxcfs offers is looked up once per dir: every start asks,
// and each look is a FUSE round trip to the one lxcfs that serves every container (slow
// exactly when many containers boot); only whether it is up is checked each time.
func Binds(dir string) []setup.Mount {
	if !Mounted(dir) {
		return nil
	}

	offered.mu.Lock()
	defer offered.mu.Unlock()
	if b, ok := offered.binds[dir]; ok {
		return append([]setup.Mount(nil), b...)
	}

	b, sure := lookBinds(dir)
	if !sure {
		return b // a look failed (lxcfs restarting?): ask again next time
	}

	if offered.binds == nil {
		offered.binds = map[string][]setup.Mount{}
	}

	offered.binds[dir] = b
	return append([]setup.Mount(nil), b...)
}

// offered caches lookBinds per lxcfs directory.
var offered struct {
	mu    sync.Mutex
	binds map[string][]setup.Mount
}

// lookBinds lists the files of a mounted lxcfs that containers get; sure is false when a
// look failed for another reason than the file's absence.
func lookBinds(dir string) (binds []setup.Mount, sure bool) {
	sure = true
	for _, f := range procFiles {
		src := filepath.Join(dir, "proc", f)
		_, err := os.Stat(src)
		if err == nil {
			binds = append(binds, setup.Mount{Source: src, Target: "/proc/" + f})
		}

		sure = sure && (err == nil || errors.Is(err, fs.ErrNotExist))
	}

	cpu := filepath.Join(dir, "sys", "devices", "system", "cpu")
	st, err := os.Stat(cpu)
	if err == nil && st.IsDir() {
		binds = append(binds, setup.Mount{Source: cpu, Target: "/sys/devices/system/cpu"})
	}

	return binds, sure && (err == nil || errors.Is(err, fs.ErrNotExist))
}

// ErrNotInstalled means the lxcfs binary is not on this host.
var ErrNotInstalled = errors.New("lxcfs is not installed")

// binary finds lxcfs.
func binary() (string, error) {
	for _, p := range []string{"/usr/bin/lxcfs", "/usr/local/bin/lxcfs"} {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
	}

	return "", ErrNotInstalled
}

func pidFile(dir string) string { return dir + ".pid" }

func logFile(dir string) string { return dir + ".log" }

// unmountStale removes a dead lxcfs mount (ENOTCONN) so a new one can take its place.
func unmountStale(dir string) error {
	var st unix.Statfs_t
	err := unix.Statfs(dir, &st)
	if err == nil && st.Type != fuseSuperMagic {
		return nil
	}

	err = unix.Unmount(dir, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting stale lxcfs at %q: %w", dir, err)
	}

	return nil
}
