package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sealedFDs lists the fds of pid that are the memfd (dev, ino) given.
func sealedFDs(pid int, dev, ino uint64) []string {
	var out []string
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		p := fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Dev == dev && st.Ino == ino {
			out = append(out, e.Name())
		}
	}

	return out
}

// daemonChildren lists the processes whose parent is pid.
func daemonChildren(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}

		// pid (comm) state ppid ...: comm may hold spaces, so cut after the last ")".
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			p, _ := strconv.Atoi(filepath.Base(filepath.Dir(s)))
			out = append(out, p)
		}
	}

	return out
}

// TestAttackInheritedMemfd: the daemon's sealed copy of itself (a memfd) is held by the
// daemon alone; none of its children (dnsmasq, lxcfs, monitors, proxies, exec servers)
// inherits it. A process that holds it could read the daemon's binary and, through
// /proc/<pid>/fd, re-execute it.
func TestAttackInheritedMemfd(t *testing.T) {
	// A private lxcfs, so that this daemon starts it (the shared one may come from any
	// daemon). Registered before the daemon: cleaned after it.
	lxcfsDir := ""
	if haveLXCFS(t) {
		base, err := os.MkdirTemp("/tmp", "bt-lxcfs-")
		if err != nil {
			t.Fatal(err)
		}

		_ = os.Chmod(base, 0o755) // the container's root resolves the lxcfs files
		lxcfsDir = filepath.Join(base, "lxcfs")
		t.Setenv("BERTH_LXCFS_DIR", lxcfsDir)
		t.Cleanup(func() {
			if b, err := os.ReadFile(lxcfsDir + ".pid"); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGTERM)
				}
			}

			_ = exec.Command("umount", "-l", lxcfsDir).Run()
			_ = os.RemoveAll(base)
		})
	}

	d := startDaemon(t)
	name := uniqueName("mfd")
	d.berth("launch", "debian/12", name)
	d.waitRunning(name)
	d.berth("config", "device", "add", name, "web", "proxy", fmt.Sprintf("listen=tcp:127.0.0.1:%d", cfgFreePort(t, "tcp")), "connect=tcp:127.0.0.1:80")
	d.berth("exec", name, "--", "true") // starts the exec server

	// Positive control: the daemon holds the memfd, and this is how it looks.
	daemon := d.cmd.Process.Pid
	var dev, ino uint64
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", daemon))
	for _, e := range ents {
		p := fmt.Sprintf("/proc/%d/fd/%s", daemon, e.Name())
		l, _ := os.Readlink(p)
		var st syscall.Stat_t
		if strings.HasPrefix(l, "/memfd:berthd") && syscall.Stat(p, &st) == nil {
			dev, ino = st.Dev, st.Ino
		}
	}

	if ino == 0 {
		t.Fatal("control: the daemon holds no memfd:berthd")
	}

	procs := map[int]string{}
	for _, p := range daemonChildren(daemon) {
		procs[p] = "child"
	}

	nets, _ := filepath.Glob(filepath.Join(d.dir, "networks", "*", "dnsmasq.pid"))
	if len(nets) == 0 {
		t.Fatal("no dnsmasq for this daemon")
	}

	for _, f := range nets {
		procs[readPID(t, f)] = "dnsmasq"
	}

	if lxcfsDir != "" {
		procs[readPID(t, lxcfsDir+".pid")] = "lxcfs"
	}

	procs[readPID(t, filepath.Join(d.dir, "instances", name, "devices", "web.pid"))] = "proxy"

	for pid, what := range procs {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if fds := sealedFDs(pid, dev, ino); len(fds) > 0 {
			t.Errorf("%s %d (%s) holds the daemon's sealed memfd as fd %v", what, pid, strings.TrimSpace(string(comm)), fds)
		}
	}

	if len(procs) < 4 {
		t.Errorf("control: only %d processes checked: %v", len(procs), procs)
	}
}
