package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/test/testutil"
)

// pssBase is the memory of the shared processes before any container: what they have
// grown by with N running is charged to the containers.
type pssBase struct {
	berthd, lxcfs, dnsmasq int64 // kB
	lxcfsPid, dnsmasqPid   int
}

func (d *density) baseline() (pssBase, error) {
	base := pssBase{lxcfsPid: testutil.LxcfsPid(), dnsmasqPid: d.dnsmasqPid()}
	base.berthd = pssKB(d.b.cmd.Process.Pid)
	base.lxcfs = pssKB(base.lxcfsPid)
	base.dnsmasq = pssKB(base.dnsmasqPid)
	if base.berthd <= 0 {
		return base, fmt.Errorf("reading berthd's PSS")
	}

	return base, nil
}

// dnsmasqPid is the pid of the daemon's dnsmasq (one network: the default one), 0 if
// none runs.
func (d *density) dnsmasqPid() int {
	files, _ := filepath.Glob(filepath.Join(d.b.dir, "networks", "*", "dnsmasq.pid"))
	for _, f := range files {
		pid := readPidFile(f)
		if comm(pid) == "dnsmasq" {
			return pid
		}
	}

	return 0
}

// overhead notes what the host pays per container with N running, outside the
// containers' own cgroups: every monitor, every other process berthd or a monitor
// started that is not in a container (exec servers, ...), and what berthd, lxcfs and
// dnsmasq grew by since there were none. PSS: pages shared between processes (the
// monitors share their binary) are split between them, so the sum is what they cost.
func (d *density) overhead(base pssBase) error {
	procs := scanProcs()
	monitors := map[int]bool{}
	var monPSS []int64
	for _, name := range d.names(d.n) {
		pid := readPidFile(filepath.Join(d.b.dir, "instances", name, "run", "monitor.pid"))
		if pid <= 0 {
			return fmt.Errorf("%s has no monitor", name)
		}

		monitors[pid] = true
		monPSS = append(monPSS, pssKB(pid))
	}

	// The containers' processes: each init (the monitor's child in a pid namespace of
	// its own) and everything under it.
	inits := map[int]bool{}
	for pid, p := range procs {
		if monitors[p.ppid] && !monitors[pid] && pidNS(pid) != pidNS(p.ppid) {
			inits[pid] = true
		}
	}

	berthd := d.b.cmd.Process.Pid
	lxcfsPid, dnsmasqPid := testutil.LxcfsPid(), d.dnsmasqPid()
	helpers := map[string][]int64{} // by argv0
	for pid := range procs {
		if pid == berthd || pid == lxcfsPid || pid == dnsmasqPid || monitors[pid] || inits[pid] {
			continue // counted apart
		}

		if under(procs, pid, inits) || !under(procs, pid, map[int]bool{berthd: true}) && !under(procs, pid, monitors) {
			continue
		}

		name := filepath.Base(procs[pid].argv0)
		helpers[name] = append(helpers[name], pssKB(pid))
	}

	n := int64(d.n)
	monTotal := sum(monPSS)
	helperTotal := int64(0)
	var helperText []string
	for name, kb := range helpers {
		helperTotal += sum(kb)
		helperText = append(helperText, fmt.Sprintf("%s ×%d %d kB", name, len(kb), sum(kb)))
	}

	sort.Strings(helperText)
	berthdNow := pssKB(berthd)
	lxcfsNow, dnsmasqNow := pssKB(lxcfsPid), pssKB(dnsmasqPid)
	// A process that shrank (berthd's heap given back to the kernel) costs the containers
	// nothing, not less than nothing: the breakdown shows it, the total counts 0.
	growth := func(before, now int64) int64 { return max(now-before, 0) }
	total := monTotal + helperTotal + growth(base.berthd, berthdNow) + growth(base.lxcfs, lxcfsNow) + growth(base.dnsmasq, dnsmasqNow)

	d.r.note("density: host memory per container with %d running: %d kB PSS = monitor %d + other helpers %d + berthd growth %+d + lxcfs growth %+d + dnsmasq growth %+d (kB per container)",
		d.n, total/n, monTotal/n, helperTotal/n, (berthdNow-base.berthd)/n, (lxcfsNow-base.lxcfs)/n, (dnsmasqNow-base.dnsmasq)/n)
	sort.Slice(monPSS, func(i, j int) bool { return monPSS[i] < monPSS[j] })
	d.r.note("density:   monitors: %d, PSS median %d kB (min %d, max %d), total %d kB", len(monPSS), monPSS[len(monPSS)/2], monPSS[0], monPSS[len(monPSS)-1], monTotal)
	d.r.note("density:   other processes of berthd or the monitors outside the containers: %s", orNone(strings.Join(helperText, ", ")))
	d.r.note("density:   berthd PSS %d kB with none, %d kB with %d", base.berthd, berthdNow, d.n)
	d.r.note("density:   dnsmasq (pid %d, then %d) PSS %d kB with none, %d kB with %d", base.dnsmasqPid, dnsmasqPid, base.dnsmasq, dnsmasqNow, d.n)
	d.r.note("density:   lxcfs (pid %d, then %d; one per host, shared with any other daemon's containers) PSS %d kB with none, %d kB with %d",
		base.lxcfsPid, lxcfsPid, base.lxcfs, lxcfsNow, d.n)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}

	return s
}

func sum(v []int64) int64 {
	t := int64(0)
	for _, x := range v {
		t += x
	}

	return t
}

// proc is one process of the host.
type proc struct {
	ppid  int
	argv0 string
}

func scanProcs() map[int]proc {
	out := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}

		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}

		// "pid (comm) S ppid ...": comm may hold spaces and parentheses.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}

		ppid, _ := strconv.Atoi(f[1])
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if argv0 == "" {
			argv0 = comm(pid)
		}

		out[pid] = proc{ppid: ppid, argv0: argv0}
	}

	return out
}

// under says whether pid is one of roots or descends from one.
func under(procs map[int]proc, pid int, roots map[int]bool) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		if roots[pid] {
			return true
		}

		pid = procs[pid].ppid
	}

	return false
}

// pssKB reads a process's proportional set size in kB (0 if it is gone).
func pssKB(pid int) int64 {
	if pid <= 0 {
		return 0
	}

	kb, _ := strconv.ParseInt(strings.TrimSuffix(pss(pid), " kB"), 10, 64)
	return kb
}

func readPidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}

	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func comm(pid int) string {
	if pid <= 0 {
		return ""
	}

	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func pidNS(pid int) string {
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return ns
}

// execServers notes the PSS of the exec servers berthd runs now (the exec figures started
// one; an idle container has none until its first exec).
func (d *density) execServers() {
	var kb []string
	for pid, p := range scanProcs() {
		if p.ppid == d.b.cmd.Process.Pid && strings.Contains(p.argv0, "exec-server") {
			kb = append(kb, fmt.Sprintf("%d kB", pssKB(pid)))
		}
	}

	d.r.note("density:   exec servers after the exec figures with %d running (one per container exec'd into, until idle): %s", d.n, orNone(strings.Join(kb, ", ")))
}
