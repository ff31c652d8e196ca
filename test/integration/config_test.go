package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// TestConfigAndLimits drives instance configuration end to end on one running
// container: the CLI round trip, ETag and validation failures that change nothing, live
// cgroup limits (an OOM kill and a fork bomb stay inside), lxcfs's view of them, and
// autostart across a daemon restart.
func TestConfigAndLimits(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	name := uniqueName("cfg")
	d.berth("launch", "debian/12", name)
	if st := d.waitRunning(name); st != "running" && st != "degraded" {
		t.Fatalf("systemd is %q", st)
	}

	path := "/1.0/instances/" + name

	t.Run("set-get-unset", func(t *testing.T) {
		d.berth("config", "set", name, "user.color", "blue")
		d.berth("config", "set", name, "user.size=3", "environment.FOO=bar")
		if got := strings.TrimSpace(d.berth("config", "get", name, "user.color")); got != "blue" {
			t.Fatalf("config get = %q", got)
		}

		show := d.berth("config", "show", name)
		for _, want := range []string{"user.size: \"3\"", "environment.FOO: bar", "profiles:", "- default"} {
			if !strings.Contains(show, want) {
				t.Errorf("config show lacks %q:\n%s", want, show)
			}
		}

		if !strings.Contains(d.berth("config", "show", name, "--expanded"), "root:") {
			t.Errorf("config show --expanded lacks the default profile's root disk")
		}

		d.berth("config", "unset", name, "user.color")
		if got := strings.TrimSpace(d.berth("config", "get", name, "user.color")); got != "" {
			t.Fatalf("after unset, config get = %q", got)
		}

		out, err := d.berthErr("config", "unset", name, "user.color")
		if err == nil || !strings.Contains(out, "not currently set") {
			t.Fatalf("unsetting a missing key: %v %s", err, out)
		}

		// edit with YAML on standard input (not a terminal)
		cmd := exec.Command(berthBin, "config", "edit", name)
		cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
		cmd.Stdin = strings.NewReader("config:\n  user.edited: \"yes\"\nprofiles: [default]\ndevices: {}\n")
		out2, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("config edit: %v %s", err, out2)
		}

		inst, _, _ := d.c.GetInstance(context.Background(), name)
		if inst.Config["user.edited"] != "yes" || inst.Config["user.size"] != "" || inst.Config["volatile.uuid"] == "" {
			t.Fatalf("after edit, config = %v (edited key set, others replaced, volatile kept)", inst.Config)
		}
	})

	t.Run("etag-and-validation", func(t *testing.T) {
		_, env, etag := d.rawH("GET", path, nil, nil)
		if etag == "" {
			t.Fatal("GET has no ETag")
		}

		inst := api.Instance{}
		_ = json.Unmarshal(env.Metadata, &inst)
		put := inst.InstancePut
		put.Config["user.x"] = "1"

		code, env, _ := d.rawH("PUT", path, put, map[string]string{"If-Match": `"0000"`})
		if code != 412 {
			t.Fatalf("PUT with a stale If-Match: %d %s, want 412", code, env.Error)
		}

		for key, value := range map[string]string{
			"limits.memroy":        "1GiB",
			"limits.memory":        "lots",
			"limits.cpu":           "0-99",
			"limits.cpu.allowance": "150%",
			"limits.processes":     "-4",
			"boot.autostart":       "maybe",
			"raw.idmap":            "both 1000 1000",
		} {
			bad := inst.InstancePut
			bad.Config = map[string]string{}
			for k, v := range inst.Config {
				bad.Config[k] = v
			}

			bad.Config["user.x"] = "1"
			bad.Config[key] = value
			code, env, _ := d.rawH("PUT", path, bad, map[string]string{"If-Match": etag})
			if code != 400 || !strings.Contains(env.Error, key) {
				t.Errorf("PUT %s=%s: %d %q, want 400 naming the key", key, value, code, env.Error)
			}
		}

		_, _, after := d.rawH("GET", path, nil, nil)
		if after != etag {
			t.Fatalf("a refused PUT changed the instance (ETag %s -> %s)", etag, after)
		}

		// Volatile keys are the server's record: a PUT that sends another value (as lxc
		// copy --refresh sends the source's) is applied without them.
		forged := put
		forged.Config = map[string]string{}
		for k, v := range put.Config {
			forged.Config[k] = v
		}

		forged.Config["volatile.uuid"] = "forged"
		code, env, _ = d.rawH("PUT", path, forged, map[string]string{"If-Match": etag})
		if code != 202 {
			t.Fatalf("PUT with the right If-Match: %d %s, want 202 (operation)", code, env.Error)
		}

		// The PUT is an operation: wait for it, as lxc does, before the next change.
		cfgWait(t, func() bool {
			i, _, _ := d.c.GetInstance(context.Background(), name)
			return i.Config["user.x"] == "1"
		})

		if i, _, _ := d.c.GetInstance(context.Background(), name); i.Config["volatile.uuid"] != inst.Config["volatile.uuid"] {
			t.Errorf("a PUT changed volatile.uuid from %q to %q", inst.Config["volatile.uuid"], i.Config["volatile.uuid"])
		}

		code, env, _ = d.rawH("PATCH", path, map[string]any{"config": map[string]string{"user.y": "2"}}, nil)
		if code != 202 {
			t.Fatalf("PATCH: %d %s", code, env.Error)
		}

		cfgWait(t, func() bool {
			i, _, _ := d.c.GetInstance(context.Background(), name)
			return i.Config["user.x"] == "1" && i.Config["user.y"] == "2"
		})
	})

	t.Run("memory-oom-inside", func(t *testing.T) {
		d.berth("config", "set", name, "limits.memory=128MiB")
		if got := d.v1File(t, name, "memory", "memory.limit_in_bytes"); got != "" && got != strconv.Itoa(128<<20) {
			t.Fatalf("memory.limit_in_bytes = %s", got)
		}

		if haveLXCFS(t) {
			out, err := d.insideCg(name, "free -m | awk '/^Mem:/{print $2}'")
			if err != nil || strings.TrimSpace(out) != "128" {
				t.Errorf("free -m total inside = %q (%v), want 128", out, err)
			}
		}

		pid := d.initPID(name)
		start := time.Now()
		out, err := d.insideCg(name, "head -c 400M /dev/zero | tail > /dev/null; echo status=$?")
		t.Logf("memory hog: %s in %s", strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
		if err != nil || !strings.Contains(out, "status=137") {
			t.Fatalf("the hog was not OOM-killed: %v %q", err, out)
		}

		if v1 := d.v1File(t, name, "memory", "memory.failcnt"); v1 == "0" {
			t.Errorf("memory.failcnt is 0 after the hog")
		}

		if d.initPID(name) != pid {
			t.Fatalf("init changed after the OOM kill")
		}

		if st := cfgStatus(t, d, name); st != "Running" {
			t.Fatalf("instance is %s after the OOM kill", st)
		}
	})

	t.Run("cpu-and-lxcfs", func(t *testing.T) {
		d.berth("config", "set", name, "limits.cpu=1", "limits.cpu.allowance=50%")
		if got := d.v1File(t, name, "cpu", "cpu.cfs_quota_us"); got != "" && got != "50000" {
			t.Errorf("cpu.cfs_quota_us = %s, want 50000", got)
		}

		out, err := d.insideCg(name, "nproc")
		if err != nil || strings.TrimSpace(out) != "1" {
			t.Errorf("nproc inside = %q (%v), want 1", out, err)
		}

		if !haveLXCFS(t) {
			return
		}

		out, err = d.insideCg(name, "grep -c ^processor /proc/cpuinfo; cut -d' ' -f1 /proc/uptime")
		f := strings.Fields(out)
		if err != nil || len(f) != 2 || f[0] != "1" {
			t.Fatalf("cpuinfo/uptime inside: %q %v", out, err)
		}

		up, _ := strconv.ParseFloat(f[1], 64)
		hostUp, _ := os.ReadFile("/proc/uptime")
		hu, _ := strconv.ParseFloat(strings.Fields(string(hostUp))[0], 64)
		if up > 600 || up >= hu {
			t.Errorf("uptime inside is %.0fs (host %.0fs): not the container's own", up, hu)
		}

		d.berth("config", "unset", name, "limits.cpu.allowance")
		if got := d.v1File(t, name, "cpu", "cpu.cfs_quota_us"); got != "" && got != "-1" {
			t.Errorf("after unset, cpu.cfs_quota_us = %s, want -1", got)
		}
	})

	t.Run("fork-bomb", func(t *testing.T) {
		// The pids limit alone: the 128 MiB left by the OOM test would have the memory
		// controller kill the bomb before it reaches it.
		d.berth("config", "unset", name, "limits.memory")
		d.berth("config", "set", name, "limits.processes=300")
		if got := d.v1File(t, name, "pids", "pids.max"); got != "" && got != "300" {
			t.Fatalf("pids.max = %s", got)
		}

		join, err := d.cgroupJoin(name)
		if err != nil {
			t.Fatal(err)
		}

		bomb := exec.Command("sh", "-c", join+fmt.Sprintf(`exec nsenter -t %d -a -- sh -c 'f(){ f | f & }; f; sleep 30'`, d.initPID(name)))
		bomb.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = bomb.Start()
		if err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() { _ = syscall.Kill(-bomb.Process.Pid, syscall.SIGKILL); _ = bomb.Wait() })

		if d.v1File(t, name, "pids", "pids.current") != "" {
			// The bomb has pressed against the limit once the kernel refused it a fork
			// (pids.events "max N"); its count of live tasks swings below 300 meanwhile.
			peak := 0
			cfgWait(t, func() bool {
				n, _ := strconv.Atoi(d.v1File(t, name, "pids", "pids.current"))
				peak = max(peak, n)
				ev := strings.Fields(d.v1File(t, name, "pids", "pids.events"))
				return len(ev) == 2 && ev[0] == "max" && ev[1] != "0" && peak >= 100
			})

			for range 20 {
				n, _ := strconv.Atoi(d.v1File(t, name, "pids", "pids.current"))
				peak = max(peak, n)
				time.Sleep(50 * time.Millisecond)
			}

			failcnt := d.v1File(t, name, "pids", "pids.events")
			t.Logf("fork bomb peaked at %d pids (limit 300); pids.events: %s", peak, failcnt)
			if peak > 300 {
				t.Fatalf("pids.current %d above the limit", peak)
			}
		}

		// The host still forks, and the daemon answers.
		_, err = d.c.GetInstanceState(context.Background(), name)
		if err != nil {
			t.Fatalf("daemon during the fork bomb: %v", err)
		}

		start := time.Now()
		d.berth("stop", "-f", name)
		took := time.Since(start)
		t.Logf("berth stop -f during the fork bomb took %s", took.Round(time.Millisecond))
		if took > 10*time.Second {
			t.Fatalf("stop -f took %s", took)
		}

		d.berth("config", "unset", name, "limits.processes")
		d.berth("start", name)
		d.waitRunning(name)
	})

	t.Run("autostart", func(t *testing.T) {
		d.berth("config", "set", name, "boot.autostart=true")
		d.berth("stop", "-f", name)
		d.kill(syscall.SIGTERM)
		d.start()
		cfgWait(t, func() bool { return cfgStatus(t, d, name) == "Running" })
		d.berth("config", "unset", name, "boot.autostart")
	})
}

// TestDevices adds and removes disk, unix-char and proxy devices on a running container
// (hotplug) and checks them again after a restart (set up at start). The disks are
// shift=true (idmapped: the container's root is host root on the share); the default,
// unmapped disks are attacked in attack_disk_test.go.
func TestDevices(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	name := uniqueName("dev")
	d.berth("launch", "debian/12", name)
	d.waitRunning(name)

	share := t.TempDir()
	_ = os.Chmod(filepath.Dir(share), 0o755)
	_ = os.Chmod(share, 0o755)
	err := os.WriteFile(filepath.Join(share, "hello"), []byte("from the host\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, when string) {
		t.Helper()
		out, err := d.inside(name, "sh", "-c", "stat -c '%u:%g' /mnt/rw/hello /mnt/ro/hello; cat /mnt/rw/hello; touch /mnt/rw/new-"+when+" && echo rw-ok; touch /mnt/ro/x 2>&1 || echo ro-refused; stat -c '%F %t:%T %u:%g %a' /dev/fuse")
		if err != nil {
			t.Fatalf("%s: %v\n%s", when, err, out)
		}

		for _, want := range []string{"0:0\n0:0\n", "from the host", "rw-ok", "Read-only file system", "character special file a:e5 0:0 660"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: devices inside lack %q:\n%s", when, want, out)
			}
		}

		st, err := os.Stat(filepath.Join(share, "new-"+when))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: a file the container's root made is not host-root owned in the share: %v", when, err)
		}
	}

	t.Run("hotplug", func(t *testing.T) {
		d.berth("config", "device", "add", name, "rw", "disk", "source="+share, "path=/mnt/rw", "shift=true")
		d.berth("config", "device", "add", name, "ro", "disk", "source="+share, "path=/mnt/ro", "readonly=true", "shift=true")
		d.berth("config", "device", "add", name, "fuse", "unix-char", "source=/dev/fuse")
		check(t, "hotplug")

		out, err := d.inside(name, "mount", "-o", "remount,rw", "/mnt/ro")
		if err == nil {
			t.Errorf("the container's root remounted the read-only disk read-write: %s", out)
		}

		list := d.berth("config", "device", "list", name)
		if !strings.Contains(list, "fuse\nro\nrw") {
			t.Errorf("device list:\n%s", list)
		}

		out, err = d.berthErr("config", "device", "add", name, "rw", "disk", "source=/tmp", "path=/x")
		if err == nil || !strings.Contains(out, "already exists") {
			t.Errorf("adding a device twice: %v %s", err, out)
		}

		out, err = d.berthErr("config", "device", "add", name, "bad", "disk", "source=/tmp", "path=/x", "color=red")
		if err == nil || !strings.Contains(out, "color") {
			t.Errorf("a device with an unknown key: %v %s", err, out)
		}
	})

	t.Run("at-start", func(t *testing.T) {
		d.berth("restart", "-f", name)
		d.waitRunning(name)
		check(t, "start")
	})

	t.Run("reboot-inside", func(t *testing.T) {
		// A reboot inside makes a new init in new namespaces: the devices must follow.
		port := cfgFreePort(t, "tcp")
		d.berth("config", "device", "add", name, "web2", "proxy", fmt.Sprintf("listen=tcp:127.0.0.1:%d", port), "connect=tcp:127.0.0.1:7779")
		// Added live: the monitor learns it for the reboot.
		d.berth("config", "device", "add", name, "late", "disk", "source="+share, "path=/mnt/late", "shift=true")

		old := d.initPID(name)
		out, err := d.inside(name, "systemctl", "reboot")
		if err != nil {
			t.Fatalf("systemctl reboot: %v\n%s", err, out)
		}

		cfgWait(t, func() bool {
			st, err := d.c.GetInstanceState(context.Background(), name)
			return err == nil && st.Pid > 0 && int(st.Pid) != old
		})

		if st := d.waitRunning(name); st != "running" {
			t.Fatalf("after reboot: %q", st)
		}

		check(t, "reboot")

		if out, err := d.inside(name, "cat", "/mnt/late/hello"); err != nil || out != "from the host\n" {
			t.Errorf("a disk added live is gone after a reboot: %v %q", err, out)
		}

		_, err = d.insideCg(name, `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1:7779",Listen=>5,ReuseAddr=>1) or die; while($c=$s->accept){print $c "after reboot\n"; close $c}' </dev/null >/dev/null 2>&1 &`)
		if err != nil {
			t.Fatal(err)
		}

		cfgWait(t, func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err != nil {
				return false
			}

			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')

			return line == "after reboot\n"
		})

		d.berth("config", "device", "remove", name, "web2", "late")
	})

	t.Run("hot-remove", func(t *testing.T) {
		d.berth("config", "device", "remove", name, "rw", "fuse")
		out, _ := d.inside(name, "sh", "-c", "ls /mnt/rw; test -e /dev/fuse && echo fuse-still-there; findmnt -n /mnt/rw || echo unmounted")
		if strings.Contains(out, "hello") || strings.Contains(out, "fuse-still-there") || !strings.Contains(out, "unmounted") {
			t.Errorf("after removal:\n%s", out)
		}
	})

	t.Run("proxy", func(t *testing.T) {
		// A one-line TCP server and a UDP echo inside (perl-base is in every Debian).
		server := `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1:7777",Listen=>5,ReuseAddr=>1) or die; while($c=$s->accept){print $c "tcp inside\n"; close $c}' </dev/null >/dev/null 2>&1 &
perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1:7778",Proto=>"udp") or die; while($s->recv($m,100)){$s->send("udp inside: $m")}' </dev/null >/dev/null 2>&1 &`
		_, err := d.insideCg(name, server)
		if err != nil {
			t.Fatal(err)
		}

		tcpPort, udpPort := cfgFreePort(t, "tcp"), cfgFreePort(t, "udp")
		d.berth("config", "device", "add", name, "web", "proxy", fmt.Sprintf("listen=tcp:127.0.0.1:%d", tcpPort), "connect=tcp:127.0.0.1:7777")
		d.berth("config", "device", "add", name, "dns", "proxy", fmt.Sprintf("listen=udp:127.0.0.1:%d", udpPort), "connect=udp:127.0.0.1:7778")

		var line string
		cfgWait(t, func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), time.Second)
			if err != nil {
				return false
			}

			defer c.Close()
			line, _ = bufio.NewReader(c).ReadString('\n')
			return line == "tcp inside\n"
		})

		u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udpPort))
		if err != nil {
			t.Fatal(err)
		}

		defer u.Close()
		buf := make([]byte, 100)
		var got string
		cfgWait(t, func() bool { // datagrams sent before the server inside binds are lost
			_ = u.SetDeadline(time.Now().Add(500 * time.Millisecond))
			_, _ = u.Write([]byte("ping"))
			n, err := u.Read(buf)
			got = string(buf[:max(n, 0)])
			return err == nil && got == "udp inside: ping"
		})

		// The proxies outlive a daemon restart and end with the container.
		d.kill(syscall.SIGTERM)
		d.start()
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), time.Second)
		if err != nil {
			t.Fatalf("proxy gone after a daemon restart: %v", err)
		}

		c.Close()
		d.berth("config", "device", "remove", name, "web")
		cfgWait(t, func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), time.Second)
			if err == nil {
				c.Close()
			}

			return err != nil
		})

		d.berth("stop", "-f", name)
		cfgWait(t, func() bool {
			_, err := u.Write([]byte("ping"))
			if err != nil {
				return true
			}

			_ = u.SetDeadline(time.Now().Add(300 * time.Millisecond))
			_, err = u.Read(buf)
			return err != nil
		})
	})
}

func cfgFreePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}

		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func cfgStatus(t *testing.T, d *daemon, name string) string {
	t.Helper()
	st, err := d.c.GetInstanceState(context.Background(), name)
	if err != nil {
		return err.Error()
	}

	return st.Status
}

func cfgWait(t *testing.T, cond func() bool) {
	t.Helper()
	waitUntil(t, 20*time.Second, cond)
}
