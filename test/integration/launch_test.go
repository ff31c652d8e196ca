package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestParallelLaunch launches ten containers at once through one daemon, as an operator
// filling a host does: every launch succeeds (no lock, busy or half-made instance), every
// container's systemd reaches running, each has an address and a MAC of its own, and the
// daemon logged no database contention. Timing is the bench's (parallel section).
func TestParallelLaunch(t *testing.T) {
	parallel(t)
	d := startNetDaemon(t)

	const n = 10
	names := make([]string, n)
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range names {
		names[i] = fmt.Sprintf("par%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = d.berthErr("launch", "debian/12", names[i])
		}()
	}

	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			t.Errorf("launch %s: %v\n%s", name, errs[i], outs[i])
		}
	}

	if t.Failed() {
		t.FailNow()
	}

	addrs := map[string]string{}
	macs := map[string]string{}
	for _, name := range names {
		if s := d.waitRunning(name); s != "running" {
			t.Errorf("%s: is-system-running = %q", name, s)
			continue
		}

		addr := d.waitIPv4(name, time.Minute)
		if other, ok := addrs[addr]; ok {
			t.Errorf("%s and %s both have %s", name, other, addr)
		}

		addrs[addr] = name

		st, err := d.c.GetInstanceState(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}

		mac := st.Network["eth0"].Hwaddr
		if other, ok := macs[mac]; ok || mac == "" {
			t.Errorf("%s has MAC %q, as %s", name, mac, other)
		}

		macs[mac] = name
	}

	for _, bad := range []string{"database is locked", "database is busy", "SQLITE_BUSY"} {
		if strings.Contains(d.log.String(), bad) {
			t.Errorf("the daemon logged %q during the parallel launches", bad)
		}
	}
}

// TestSpareMonitorGoesWithDaemon: berthd keeps one spare monitor (a `__monitor` without a
// run directory) ahead of the next start; when berthd dies, even by SIGKILL, the spare
// exits by itself while the containers run on.
func TestSpareMonitorGoesWithDaemon(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "c1", "--no-profiles")
	init1 := d.initPID("c1")

	spare := waitSpare(t, d.cmd.Process.Pid)
	d.kill(syscall.SIGKILL)
	if alive(spare, 20*time.Second) {
		t.Errorf("spare monitor %d still runs 20s after berthd was killed", spare)
		_ = syscall.Kill(spare, syscall.SIGKILL)
	}

	if !alive(init1, 0) {
		t.Error("the container died with berthd")
	}

	d.start()
	if !alive(init1, 0) {
		t.Error("the container died when berthd came back")
	}

	waitSpare(t, d.cmd.Process.Pid)
}

// waitSpare waits for berthd (pid) to have exactly one spare monitor and returns its pid.
func waitSpare(t *testing.T, berthd int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		spares := sparesOf(berthd)
		if len(spares) == 1 {
			return spares[0]
		}

		if time.Now().After(deadline) {
			t.Fatalf("berthd %d has spare monitors %v, want one", berthd, spares)
		}

		time.Sleep(20 * time.Millisecond)
	}
}

// sparesOf lists the spare monitors among the children of pid: a command line of
// `... __monitor` alone, and output not (yet) going to a container's monitor log, as it
// does once the spare serves one.
func sparesOf(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(data)) {
			cmd, _ := os.ReadFile("/proc/" + c + "/cmdline")
			args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
			out2, _ := os.Readlink("/proc/" + c + "/fd/2")
			if len(args) == 2 && args[1] == "__monitor" && !strings.HasSuffix(out2, "/monitor.log") {
				n, _ := strconv.Atoi(c)
				out = append(out, n)
			}
		}
	}

	return out
}
