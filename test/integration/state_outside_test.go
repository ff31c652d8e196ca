package integration

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
)

// The state of a running instance is read from the host (cgroup files, the host end of
// its veth, its addresses by the host's id of its namespace), cached for StateTTL. What it
// says matches what the container sees, and it moves with what happens inside once the
// cache time has passed.
func TestStateReadFromOutside(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "o1")
	d.waitRunning("o1")
	d.waitIPv4("o1", 30*time.Second)
	d.waitIPv6("o1")

	pid := d.initPID("o1")
	if pid != d.initPIDFromFile("o1") {
		t.Fatalf("state pid %d is not the monitor's child %d", pid, d.initPIDFromFile("o1"))
	}

	// in runs a command in o1's namespaces by the pid found above: unlike d.inside, it asks
	// the daemon nothing, so it does not refill the state cache behind the test's back.
	in := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-a", "--"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("in o1: %v: %v\n%s", args, err, out)
		}

		return strings.TrimSpace(string(out))
	}

	fresh := func() *api.InstanceState {
		t.Helper()
		time.Sleep(instance.StateTTL + 200*time.Millisecond)
		return d.state("o1")
	}

	// Addresses: the global ones of eth0 inside, and the loopback's.
	st := fresh()
	var want []string
	for _, line := range strings.Split(in("ip", "-o", "addr", "show", "dev", "eth0", "scope", "global"), "\n") {
		f := strings.Fields(line)
		for i := range f {
			if (f[i] == "inet" || f[i] == "inet6") && i+1 < len(f) {
				want = append(want, f[i]+" "+f[i+1])
			}
		}
	}

	var got []string
	for _, a := range st.Network["eth0"].Addresses {
		if a.Scope == "global" {
			got = append(got, a.Family+" "+a.Address+"/"+a.Netmask)
		}
	}

	slices.Sort(want)
	slices.Sort(got)
	if len(want) < 2 || !slices.Equal(got, want) {
		t.Fatalf("eth0's global addresses: state %v, inside %v", got, want)
	}

	lo := st.Network["lo"]
	if lo.Type != "loopback" || len(lo.Addresses) == 0 || lo.Addresses[0].Address != "127.0.0.1" {
		t.Fatalf("loopback in the state: %+v", lo)
	}

	// Counters: the host end's, turned around, are eth0's inside to the byte. Read inside
	// just before and just after a fresh gathering, they bound it.
	time.Sleep(instance.StateTTL + 200*time.Millisecond)
	tx0, rx0 := ifaceBytes(t, in)
	st = d.state("o1")
	tx1, rx1 := ifaceBytes(t, in)
	c := st.Network["eth0"].Counters
	if c.BytesSent < tx0 || c.BytesSent > tx1 || c.BytesReceived < rx0 || c.BytesReceived > rx1 {
		t.Fatalf("eth0 counters sent %d received %d; inside tx %d..%d rx %d..%d", c.BytesSent, c.BytesReceived, tx0, tx1, rx0, rx1)
	}

	// Within the cache time a second answer is the first one, traffic or not; after it,
	// the traffic shows.
	gw := strings.Split(d.defaultNetwork().Config["ipv4.address"], "/")[0]
	cachedSeen := false
	for range 3 {
		time.Sleep(instance.StateTTL + 200*time.Millisecond)
		t0 := time.Now()
		s1 := d.state("o1")
		in("ping", "-c1", "-W2", gw)
		s2 := d.state("o1")
		if time.Since(t0) >= instance.StateTTL*8/10 {
			continue // too slow to be sure the second answer was due from the cache
		}

		if s1.Network["eth0"].Counters != s2.Network["eth0"].Counters {
			t.Fatalf("a second state within %s differs: %+v then %+v", instance.StateTTL, s1.Network["eth0"].Counters, s2.Network["eth0"].Counters)
		}

		cachedSeen = true
		break
	}

	if !cachedSeen {
		t.Fatal("could not ask twice within the cache time")
	}

	before := fresh().Network["eth0"].Counters
	in("ping", "-c10", "-i0.2", "-s1000", "-W2", gw)
	after := fresh().Network["eth0"].Counters
	if after.PacketsSent-before.PacketsSent < 10 || after.BytesSent-before.BytesSent < 10*1000 ||
		after.PacketsReceived-before.PacketsReceived < 10 || after.BytesReceived-before.BytesReceived < 10*1000 {
		t.Fatalf("10 pings of 1000 bytes to %s: counters went from %+v to %+v", gw, before, after)
	}

	// Memory: 64 MiB written to the container's /dev/shm is charged to it.
	mem0 := fresh().Memory.Usage
	_, err := d.insideCg("o1", "head -c 64M /dev/zero >/dev/shm/fill")
	if err != nil {
		t.Fatal(err)
	}

	mem1 := fresh().Memory.Usage
	if mem1-mem0 < 60<<20 {
		t.Fatalf("memory went from %d to %d after writing 64 MiB to /dev/shm", mem0, mem1)
	}

	// Processes: pids.current, every task in the container's group. Twenty more sleeps
	// count, and the tasks seen inside agree (give or take the commands counting them).
	procs0 := fresh().Processes
	_, err = d.insideCg("o1", "for i in $(seq 20); do setsid sleep 600 </dev/null >/dev/null 2>&1 & done")
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(instance.StateTTL + 200*time.Millisecond)
	procs1 := d.state("o1").Processes
	tasks, _ := strconv.Atoi(in("sh", "-c", "ls -d /proc/[0-9]*/task/[0-9]* | wc -l"))
	if procs1-procs0 < 20 || tasks < int(procs1) || tasks > int(procs1)+4 {
		t.Fatalf("processes went from %d to %d after 20 sleeps; %d tasks inside", procs0, procs1, tasks)
	}

	// CPU: a busy loop inside is accounted.
	cpu0 := fresh().CPU.Usage
	_, err = d.insideCg("o1", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if err != nil {
		t.Fatal(err)
	}

	cpu1 := fresh().CPU.Usage
	if cpu1-cpu0 < int64(50*time.Millisecond) {
		t.Fatalf("CPU went from %d to %d ns after a busy loop", cpu0, cpu1)
	}
}

// state returns an instance's state through the API.
func (d *daemon) state(name string) *api.InstanceState {
	d.t.Helper()
	st, err := d.c.GetInstanceState(context.Background(), name)
	if err != nil {
		d.t.Fatal(err)
	}

	return st
}

// ifaceBytes reads eth0's transmitted and received bytes inside.
func ifaceBytes(t *testing.T, in func(args ...string) string) (int64, int64) {
	t.Helper()
	f := strings.Fields(in("cat", "/sys/class/net/eth0/statistics/tx_bytes", "/sys/class/net/eth0/statistics/rx_bytes"))
	if len(f) != 2 {
		t.Fatalf("eth0 statistics: %v", f)
	}

	tx, _ := strconv.ParseInt(f[0], 10, 64)
	rx, _ := strconv.ParseInt(f[1], 10, 64)
	return tx, rx
}

// monitorCalls reads how many requests the daemon has made to monitors.
func (d *daemon) monitorCalls() int64 {
	d.t.Helper()
	code, env := d.raw("GET", "/1.0/internal/debug/goroutines", nil)
	var m map[string]int64
	err := json.Unmarshal(env.Metadata, &m)
	_, ok := m["monitor_calls"]
	if code != 200 || err != nil || !ok {
		d.t.Fatalf("debug endpoint: %d %s %v", code, env.Metadata, err)
	}

	return m["monitor_calls"]
}
