package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// TestAttackFiles runs, from root inside a real container, the attacks of issue 9 on the
// files the daemon handles for it: host kernel files bind-mounted over push and pull
// targets and template targets, a FIFO at /etc/passwd, a sparse 64 GiB /etc/resolv.conf.
// Each asserts the attack fails and its target is unchanged, next to a positive control.
func TestAttackFiles(t *testing.T) {
	d := startDaemon(t)
	d.berth("launch", "debian/12", "a1")
	if st := d.waitRunning("a1"); st != "running" && st != "degraded" {
		t.Fatalf("a1 is %q", st)
	}

	local := t.TempDir()

	// A scratch file the container owns, bound over /root/y: pushes and pulls through a
	// container bind mount work, so a refusal below is the kernel file's, not the bind's.
	_, err := d.inside("a1", "sh", "-c", "echo scratch > /root/scratch && touch /root/y && mount --bind /root/scratch /root/y")
	must(t, err)

	t.Run("push-through-bound-host-proc", func(t *testing.T) {
		attackPushProc(t, d, local)
	})

	t.Run("pull-through-bound-host-only-file", func(t *testing.T) {
		attackPullHostOnly(t, d)
	})

	t.Run("template-target-bound-to-host-proc", func(t *testing.T) {
		attackTemplateTarget(t, d)
	})

	t.Run("passwd-fifo", func(t *testing.T) {
		attackPasswdFIFO(t, d)
	})

	t.Run("sparse-resolv-conf", func(t *testing.T) {
		attackSparseResolvConf(t, d)
	})
}

const corePattern = "/proc/sys/kernel/core_pattern"

// keepCorePattern reads the host's core_pattern and restores it at cleanup should an
// attack have changed it (as it did before the file server).
func keepCorePattern(t *testing.T) string {
	t.Helper()
	orig, err := os.ReadFile(corePattern)
	must(t, err)
	t.Cleanup(func() {
		now, _ := os.ReadFile(corePattern)
		if !bytes.Equal(now, orig) {
			_ = os.WriteFile(corePattern, orig, 0o644)
		}
	})

	return string(orig)
}

// bindProcFile binds the procfs file rel (say sys/kernel/core_pattern) over target inside
// a1: from a procfs the container mounts itself (writable, unlike its /proc/sys), else from
// its own /proc. It reports false when the container may do neither (locked /proc masks
// refusing a fresh procfs, and nothing to bind): the attack then cannot even start.
func bindProcFile(t *testing.T, d *daemon, rel, target string) bool {
	t.Helper()
	script := fmt.Sprintf(`mkdir -p /mnt/p && touch %[2]s || exit 1
if mountpoint -q /mnt/p || mount -t proc proc /mnt/p; then mount --bind /mnt/p/%[1]s %[2]s && echo fresh && exit 0; fi
mount --bind /proc/%[1]s %[2]s && echo existing`, rel, target)
	out, err := d.inside("a1", "sh", "-c", script)
	t.Cleanup(func() { _, _ = d.inside("a1", "umount", "-l", target) })
	if err != nil {
		t.Logf("container root could not bind /proc/%s over %s: %s", rel, target, out)
		return false
	}

	t.Logf("bound /proc/%s over %s from the %s procfs", rel, target, strings.TrimSpace(out))
	return true
}

func attackPushProc(t *testing.T, d *daemon, local string) {
	orig := keepCorePattern(t)
	ctx := context.Background()
	push := func(p, content string) error {
		return d.c.CreateInstanceFile(ctx, "a1", p, client.InstanceFileArgs{Content: strings.NewReader(content), UID: -1, GID: -1, Mode: -1})
	}

	if bindProcFile(t, d, "sys/kernel/core_pattern", "/root/x") {
		// Inside, /root/x is the host's core_pattern now.
		in, _ := d.inside("a1", "cat", "/root/x")
		if in != orig {
			t.Fatalf("/root/x inside reads %q, not the host's core_pattern %q", in, orig)
		}

		err := push("/root/x", "core.berth-attack\n")
		if !api.StatusErrorCheck(err, http.StatusForbidden) {
			t.Errorf("push to a bind of core_pattern: %v, want a 403 refusal", err)
		}

		// The CLI says so too.
		src := filepath.Join(local, "pattern")
		must(t, os.WriteFile(src, []byte("core.berth-attack-cli\n"), 0o644))
		out, err := d.berthErr("file", "push", src, "a1/root/x")
		if err == nil {
			t.Errorf("berth file push to a bind of core_pattern succeeded: %s", out)
		}
	}

	if bindProcFile(t, d, "sysrq-trigger", "/root/z") {
		// 'h' only prints the sysrq help to the kernel log, should the push get through.
		err := push("/root/z", "h")
		if !api.StatusErrorCheck(err, http.StatusForbidden) {
			t.Errorf("push to a bind of sysrq-trigger: %v, want a 403 refusal", err)
		}
	}

	now, _ := os.ReadFile(corePattern)
	if string(now) != orig {
		t.Fatalf("the host's core_pattern changed from %q to %q", orig, now)
	}

	// Positive control: the same push through a bind of the container's own file lands.
	err := push("/root/y", "pushed\n")
	if err != nil {
		t.Fatalf("push to a bind of a scratch file: %v", err)
	}

	out, err := d.inside("a1", "cat", "/root/scratch")
	if err != nil || out != "pushed\n" {
		t.Fatalf("scratch file after push through its bind: %q (%v)", out, err)
	}
}

// attackPullHostOnly binds a file only host root can read (an ACPI table, 0400 root, from a
// sysfs the container mounts; else a PCI config space, of which the container's root reads
// 64 bytes and host root all) over /root/secret and pulls it.
func attackPullHostOnly(t *testing.T, d *daemon) {
	var hostFile string
	for _, f := range []string{"/sys/firmware/acpi/tables/DSDT", "/sys/firmware/acpi/tables/FACP"} {
		if _, err := os.Stat(f); err == nil {
			hostFile = f
			break
		}
	}

	script := ""
	if hostFile != "" {
		script = fmt.Sprintf(`mkdir -p /mnt/s && (mountpoint -q /mnt/s || mount -t sysfs sysfs /mnt/s) && touch /root/secret && mount --bind /mnt/s/%s /root/secret && echo %s`,
			strings.TrimPrefix(hostFile, "/sys/"), hostFile)
	}

	out, err := d.inside("a1", "sh", "-c", script)
	if hostFile == "" || err != nil {
		t.Logf("no ACPI table through a fresh sysfs (%q): trying a PCI config space", out)
		devs, _ := filepath.Glob("/sys/bus/pci/devices/*/config")
		if len(devs) == 0 {
			t.Fatal("this host has neither ACPI tables nor PCI devices to attack with")
		}

		hostFile = devs[0]
		out, err = d.inside("a1", "sh", "-c", fmt.Sprintf("touch /root/secret && mount --bind %s /root/secret && echo %s", hostFile, hostFile))
		must(t, err)
	}

	t.Cleanup(func() { _, _ = d.inside("a1", "sh", "-c", "umount -l /root/secret; umount -l /mnt/s") })
	t.Logf("bound %s over /root/secret", strings.TrimSpace(out))

	host, err := os.ReadFile(hostFile)
	must(t, err)

	body, _, err := d.c.GetInstanceFile(context.Background(), "a1", "/root/secret")
	var pulled []byte
	if err == nil {
		pulled, err = readAllClose(body)
	}

	if err == nil && bytes.Equal(pulled, host) {
		t.Fatalf("pull returned %d bytes of the host's %s, as host root reads it", len(pulled), hostFile)
	}

	t.Logf("pull: %d bytes, %v (the host reads %d bytes)", len(pulled), err, len(host))

	// Positive control: a pull through a bind of the container's own file gives it.
	body, _, err = d.c.GetInstanceFile(context.Background(), "a1", "/root/y")
	must(t, err)
	pulled, err = readAllClose(body)
	if err != nil || !bytes.HasPrefix(pulled, []byte("scratch")) && !bytes.HasPrefix(pulled, []byte("pushed")) {
		t.Fatalf("pull through a bind of a scratch file: %q (%v)", pulled, err)
	}
}

func readAllClose(body interface {
	Read([]byte) (int, error)
	Close() error
}) ([]byte, error) {
	defer body.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

// attackTemplateTarget binds the host's core_pattern over /etc/hostname of the running a1,
// then has the hostname template render (a rename, which renders at the next start).
// Templates render before the container runs, on its rootfs mounted on the host, where the
// container's mounts do not exist: the kernel file must stay as it is and the hostname
// must be rendered.
func attackTemplateTarget(t *testing.T, d *daemon) {
	orig := keepCorePattern(t)
	if !bindProcFile(t, d, "sys/kernel/core_pattern", "/etc/hostname") {
		t.Log("no bind: rendering into an unbound tree only")
	}

	d.berth("stop", "-f", "a1")
	d.berth("rename", "a1", "a1b")
	t.Cleanup(func() { _, _ = d.berthErr("rename", "a1b", "a1") })
	d.berth("start", "a1b")

	now, _ := os.ReadFile(corePattern)
	if string(now) != orig {
		t.Fatalf("the host's core_pattern changed from %q to %q", orig, now)
	}

	out := d.berth("file", "pull", "a1b/etc/hostname", "-")
	if strings.TrimSpace(out) != "a1b" {
		t.Fatalf("/etc/hostname after the rename is %q, want a1b", out)
	}

	d.berth("stop", "-f", "a1b")
	d.berth("rename", "a1b", "a1")
	d.berth("start", "a1")
	d.waitRunning("a1")
}

// attackPasswdFIFO puts a FIFO at /etc/passwd, which the exec helper reads to find a
// user's home: exec must neither block on it nor leave its server behind.
func attackPasswdFIFO(t *testing.T, d *daemon) {
	d.berth("launch", "debian/12", "a2")
	t.Cleanup(func() { _, _ = d.berthErr("delete", "-f", "a2") })
	d.waitRunning("a2")

	_, err := d.inside("a2", "sh", "-c", "mv /etc/passwd /etc/passwd.real && mkfifo -m 0644 /etc/passwd && mv /etc/group /etc/group.real && mkfifo -m 0644 /etc/group")
	must(t, err)

	// A FIFO or a device is never opened by a pull (it would wait, or read forever).
	for _, p := range []string{"/etc/passwd", "/dev/zero"} {
		start := time.Now()
		_, _, err := d.c.GetInstanceFile(context.Background(), "a2", p)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) || time.Since(start) > 2*time.Second {
			t.Fatalf("pull of %s: %v after %s, want a prompt 400", p, err, time.Since(start))
		}
	}

	for _, uid := range []string{"1000", "0"} {
		start := time.Now()
		out, err := d.berthErr("exec", "a2", "--user", uid, "--", "sh", "-c", "echo home=$HOME")
		took := time.Since(start)
		t.Logf("exec as %s with a FIFO passwd: %v in %s: %q", uid, err, took.Round(time.Millisecond), out)
		if took > 2*time.Second {
			t.Fatalf("exec as %s took %s with a FIFO at /etc/passwd", uid, took)
		}

		if err != nil && !strings.Contains(out, "passwd") {
			t.Fatalf("exec as %s failed without saying why: %v %q", uid, err, out)
		}
	}

	// Positive control: with the real file back, the home comes from it.
	_, err = d.inside("a2", "sh", "-c", "rm /etc/passwd && mv /etc/passwd.real /etc/passwd && echo 'u1:x:1000:1000::/home/u1:/bin/sh' >> /etc/passwd && mkdir -p /home/u1")
	must(t, err)
	out := d.berth("exec", "a2", "--user", "1000", "--", "sh", "-c", "echo home=$HOME")
	if strings.TrimSpace(out) != "home=/home/u1" {
		t.Fatalf("exec as 1000 with a real passwd: %q, want home=/home/u1", out)
	}

	_, err = d.inside("a2", "sh", "-c", "rm /etc/group && mv /etc/group.real /etc/group && rm /etc/passwd && mkfifo -m 0644 /etc/passwd")
	must(t, err)
	out, _ = d.berthErr("exec", "a2", "--user", "1000", "--", "true")

	// Whatever ran execs (the exec server where the host allows one) ends with the
	// container: nothing of it may pin its namespaces after a delete.
	helpers := helperPids(t, d.cmd.Process.Pid)
	t.Logf("helpers of the daemon before delete: %v (%q)", helpers, out)
	d.berth("delete", "-f", "a2")
	for pid, name := range helpers {
		if alive(pid, 5*time.Second) {
			t.Errorf("%s %d still runs after its container was deleted", name, pid)
		}
	}
}

// helperPids lists the daemon's exec and file helpers: children whose argv[0] says so.
func helperPids(t *testing.T, daemon int) map[int]string {
	t.Helper()
	out := map[int]string{}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", daemon))
	for _, p := range tasks {
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			pid, _ := strconv.Atoi(f)
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			name, _, _ := strings.Cut(string(cmdline), "\x00")
			if strings.HasPrefix(name, "berth-exec") || strings.HasPrefix(name, "berth-files") {
				out[pid] = name
			}
		}
	}

	return out
}

// attackSparseResolvConf makes /etc/resolv.conf a sparse 64 GiB file, then has the daemon
// start the container again (which looks at the file to point it at the network's DNS):
// by a start, then by a daemon restart that autostarts it. The daemon must stay up and
// small, and leave the file alone.
func attackSparseResolvConf(t *testing.T, d *daemon) {
	out, err := d.inside("a1", "cat", "/etc/resolv.conf")
	if err != nil || !strings.HasPrefix(out, "# Written by Berth") {
		t.Fatalf("a1's resolv.conf is not Berth's (%v): %q; the attack needs a managed NIC", err, out)
	}

	_, err = d.inside("a1", "sh", "-c", "rm /etc/resolv.conf && truncate -s 64G /etc/resolv.conf")
	must(t, err)

	pid := d.cmd.Process.Pid
	before := vmRSS(t, pid)

	d.berth("stop", "-f", "a1")
	out, err = d.berthErr("start", "a1")
	if !alive(pid, 0) {
		// Reap it, so that the cleanup starts a daemon to delete the containers.
		d.kill(syscall.SIGTERM)
		t.Fatalf("the daemon died starting a1 with a sparse resolv.conf (%v): %s", err, out)
	}

	if err != nil {
		t.Fatalf("start with a sparse resolv.conf: %v %s", err, out)
	}

	after := vmRSS(t, pid)
	t.Logf("daemon %d VmRSS %d KiB before the start, %d KiB after", pid, before, after)
	if after > before+100<<10 {
		t.Fatalf("daemon %d after the start: VmRSS %d KiB (was %d)", pid, after, before)
	}

	size, err := d.inside("a1", "stat", "-c", "%s %b", "/etc/resolv.conf")
	if err != nil || !strings.HasPrefix(size, "68719476736 ") {
		t.Fatalf("resolv.conf after the start: %q %v, want it left alone", size, err)
	}

	// The same at the daemon's next start, through boot.autostart.
	d.berth("config", "set", "a1", "boot.autostart=true")
	d.berth("stop", "-f", "a1")
	d.kill(syscall.SIGTERM)
	d.start()
	pid = d.cmd.Process.Pid

	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := d.c.GetInstanceState(context.Background(), "a1")
		if err == nil && st.Status == "Running" {
			break
		}

		if time.Now().After(deadline) || !alive(pid, 0) {
			t.Fatalf("a1 not autostarted (daemon alive: %v): %v\n%s", alive(pid, 0), err, tail(d.log.String(), 20))
		}

		time.Sleep(100 * time.Millisecond)
	}

	rss := vmRSS(t, pid)
	t.Logf("restarted daemon %d VmRSS %d KiB after autostarting a1", pid, rss)
	if rss > before+100<<10 {
		t.Fatalf("restarted daemon VmRSS %d KiB, the first one had %d", rss, before)
	}

	d.berth("list")
	d.berth("config", "unset", "a1", "boot.autostart")
}

// vmRSS is a process's resident set in KiB.
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("daemon %d is gone: %v", pid, err)
	}

	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}

	t.Fatalf("no VmRSS for %d", pid)
	return 0
}
