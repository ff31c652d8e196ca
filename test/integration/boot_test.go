package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/idmap"
)

// TestBootMachine launches two containers and checks that each is a machine: systemd as
// PID 1 reaching "running", its own unprivileged uid range, no host process visible,
// sudo and systemctl working, and host files out of reach.
func TestBootMachine(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c1")
	d.berth("launch", "debian/12", "c2")

	for _, name := range []string{"c1", "c2"} {
		state := d.waitRunning(name)
		if state != "running" {
			failed, _ := d.inside(name, "systemctl", "--failed", "--no-pager")
			t.Fatalf("%s: systemctl is-system-running says %q, want running\n%s", name, state, failed)
		}
	}

	bases := map[string]int64{}
	for _, name := range []string{"c1", "c2"} {
		pid := d.initPID(name)
		uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
		if err != nil {
			t.Fatal(err)
		}

		f := strings.Fields(string(uidMap))
		if len(f) != 3 || f[0] != "0" || f[2] != "65536" {
			t.Fatalf("%s uid_map = %q, want one line 0 <start> 65536", name, uidMap)
		}

		// Inside one of root's subordinate ranges (Berth's default starts at 1000000,
		// Debian's lxd package writes one at 100000), never over the host's own ids.
		base, _ := strconv.ParseInt(f[1], 10, 64)
		if !inRootRange(t, base, 65536) || base < 65536 {
			t.Fatalf("%s maps root to host uid %d, not inside root's range in /etc/subuid", name, base)
		}

		bases[name] = base
	}

	if bases["c1"] == bases["c2"] {
		t.Fatalf("both containers got host uid range %d", bases["c1"])
	}

	t.Run("pid1-and-processes", func(t *testing.T) {
		comm, err := d.inside("c1", "cat", "/proc/1/comm")
		if err != nil || strings.TrimSpace(comm) != "systemd" {
			t.Fatalf("PID 1 inside is %q (%v), want systemd", comm, err)
		}

		ps, err := d.inside("c1", "ps", "-e", "-o", "pid=,comm=")
		if err != nil {
			t.Fatalf("ps: %v\n%s", err, ps)
		}

		for _, line := range strings.Split(strings.TrimSpace(ps), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}

			if strings.Contains(f[1], "berthd") || strings.Contains(f[1], "process_api") || f[1] == "go" {
				t.Errorf("host process visible inside: %q", line)
			}
		}

		if n := len(strings.Split(strings.TrimSpace(ps), "\n")); n > 60 {
			t.Errorf("%d processes visible inside; expected only the container's own", n)
		}
	})

	// The image masks what has nothing to do in a container (images/debian-12): each
	// generator is an exec on every boot, a cost density multiplies.
	t.Run("no-idle-generators", func(t *testing.T) {
		for _, g := range []string{"cryptsetup", "integritysetup", "veritysetup", "gpt-auto", "hibernate-resume", "debug", "run"} {
			p := "/etc/systemd/system-generators/systemd-" + g + "-generator"
			out, err := d.inside("c1", "readlink", p)
			if err != nil || strings.TrimSpace(out) != "/dev/null" {
				t.Errorf("%s is %q (%v), want a link to /dev/null (masked)", p, strings.TrimSpace(out), err)
			}
		}

		out, _ := d.inside("c1", "systemctl", "is-enabled", "systemd-network-generator.service")
		if strings.TrimSpace(out) != "masked" {
			t.Errorf("systemd-network-generator.service is %q, want masked", strings.TrimSpace(out))
		}
	})

	t.Run("hostname-sudo-systemctl", func(t *testing.T) {
		host, _ := d.inside("c1", "hostname")
		if strings.TrimSpace(host) != "c1" {
			t.Errorf("hostname inside = %q, want c1", host)
		}

		hosts, _ := d.inside("c1", "cat", "/etc/hosts")
		if !strings.Contains(hosts, "c1") {
			t.Errorf("/etc/hosts does not name the instance:\n%s", hosts)
		}

		out, err := d.inside("c1", "sudo", "-n", "true")
		if err != nil || strings.Contains(out, "unable to resolve") {
			t.Errorf("sudo -n true: %v %q", err, out)
		}

		out, err = d.inside("c1", "systemctl", "status", "--no-pager")
		if err != nil || !strings.Contains(out, "State: running") {
			t.Errorf("systemctl status: %v\n%s", err, tail(out, 20))
		}
	})

	t.Run("host-out-of-reach", func(t *testing.T) {
		for _, p := range []string{"/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/sys/kernel/uevent_helper"} {
			out, err := d.inside("c1", "sh", "-c", "echo x > "+p)
			if err == nil {
				t.Errorf("writing %s inside succeeded: %s", p, out)
			}
		}

		// The image's shared lower layer must not change when the container writes.
		_, err := d.inside("c1", "sh", "-c", "echo owned > /usr/bin/berth-test-file && rm -f /usr/bin/apt")
		if err != nil {
			t.Fatalf("writing inside own root: %v", err)
		}

		matches, _ := filepath.Glob(filepath.Join(d.dir, "storage-pools/default/images/*/rootfs/usr/bin/apt"))
		if len(matches) == 0 {
			if _, err := os.Stat(filepath.Join(d.dir, "storage-pools/default/containers/c2/rootfs/usr/bin/apt")); err != nil {
				t.Errorf("the image's /usr/bin/apt disappeared: the container wrote through to shared storage")
			}
		}

		out, _ := d.inside("c2", "ls", "/usr/bin/berth-test-file")
		if !strings.Contains(out, "No such file") {
			t.Errorf("c1's write is visible in c2: %q", out)
		}

		// Mounting, module loading and raw devices stay out of reach for container root.
		out, err = d.inside("c1", "sh", "-c", "ls /dev | tr '\\n' ' '")
		if err != nil || strings.Contains(out, "sda") || strings.Contains(out, "vda") || strings.Contains(out, "mem ") {
			t.Errorf("/dev inside exposes host devices: %q", out)
		}
	})
}

// TestDaemonRestartKeepsContainers kills berthd with SIGKILL and restarts it: the container
// keeps running with the same init and is listed Running again.
func TestDaemonRestartKeepsContainers(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "r1")
	pid := d.initPID("r1")

	d.kill(syscall.SIGKILL)
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("init %d died with the daemon", pid)
	}

	d.start()
	inst, _, err := d.c.GetInstance(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}

	if inst.Status != "Running" {
		t.Fatalf("after restart r1 is %s, want Running", inst.Status)
	}

	if got := d.initPID("r1"); got != pid {
		t.Fatalf("init pid changed from %d to %d", pid, got)
	}

	// SIGTERM also leaves containers running.
	d.kill(syscall.SIGTERM)
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("init %d died on daemon SIGTERM", pid)
	}

	d.start()
	d.berth("stop", "r1")
	out := d.berth("list", "--format", "csv")
	if !strings.Contains(out, "r1,STOPPED") {
		t.Fatalf("after stop, list says:\n%s", out)
	}
}

// TestStopCleanAndDeleteLeavesNothing checks that stop ends init by SIGRTMIN+3 (no kill)
// and that delete removes directory, mounts, cgroups, DB row and processes.
func TestStopCleanAndDeleteLeavesNothing(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "s1")
	if st := d.waitRunning("s1"); st != "running" {
		t.Fatalf("s1 is %q", st)
	}

	pid := d.initPID("s1")
	monPID := readPID(t, filepath.Join(d.dir, "instances/s1/run/monitor.pid"))
	start := time.Now()
	d.berth("stop", "s1")
	t.Logf("clean stop took %s", time.Since(start).Round(time.Millisecond))

	var exit struct {
		Code   int  `json:"code"`
		Signal int  `json:"signal"`
		Killed bool `json:"killed"`
	}

	data, err := os.ReadFile(filepath.Join(d.dir, "instances/s1/run/exit.json"))
	if err != nil {
		t.Fatal(err)
	}

	_ = json.Unmarshal(data, &exit)
	if exit.Killed {
		t.Fatalf("init had to be killed: %s", data)
	}

	if alive(pid, 5*time.Second) || alive(monPID, 5*time.Second) {
		t.Fatalf("init %d or monitor %d still alive after stop", pid, monPID)
	}

	d.berth("delete", "s1")
	for _, p := range []string{"instances/s1", "storage-pools/default/containers/s1"} {
		if _, err := os.Stat(filepath.Join(d.dir, p)); err == nil {
			t.Errorf("%s still exists after delete", p)
		}
	}

	// This daemon's cgroups only: other tests' daemons may run an "s1" meanwhile.
	for _, dir := range cgroupDirs(t, d, "s1") {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup left: %s", dir)
		}
	}

	if left := mountsNaming(hostMounts(t), d.dir+"/"); len(left) > 0 {
		t.Errorf("mounts left under %s: %v", d.dir, left)
	}

	code, _ := d.raw("GET", "/1.0/instances/s1", nil)
	if code != 404 {
		t.Errorf("GET deleted instance: %d, want 404", code)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}

	return pid
}

// inRootRange says whether [base, base+n) lies inside one of root's ranges in
// /etc/subuid.
func inRootRange(t *testing.T, base, n int64) bool {
	t.Helper()
	entries, err := idmap.ReadSubID("/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}

	for _, e := range entries {
		if (e.Owner == "root" || e.Owner == "0") && base >= e.Start && base+n <= e.Start+e.Count {
			return true
		}
	}

	return false
}
