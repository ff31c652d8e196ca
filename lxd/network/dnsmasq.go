package network

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/shared/atomicfile"
	"golang.org/x/sys/unix"
)

// dnsmasq supervises one network's dnsmasq. It runs in its own session so that it outlives
// berthd: a restarted daemon finds it again through the pid file and keeps it, and with it
// the leases it holds in memory. The pid file is trusted only if that process's command
// line is exactly the one we start (which names this network's configuration file).
type dnsmasq struct {
	dir string
	log *slog.Logger

	mu       sync.Mutex
	pid      int
	pidfd    int  // -1 when not watching
	stopping bool // no restart when it exits
	exited   chan struct{}
	onSpawn  func(pid int) // records a new pid (the bridge's alias)
}

func newDnsmasq(dir string, log *slog.Logger) *dnsmasq {
	return &dnsmasq{dir: dir, log: log, pidfd: -1}
}

func (d *dnsmasq) confPath() string { return filepath.Join(d.dir, "dnsmasq.conf") }
func (d *dnsmasq) pidPath() string  { return filepath.Join(d.dir, "dnsmasq.pid") }

func (d *dnsmasq) args() []string {
	return []string{"dnsmasq", "--keep-in-foreground", "--conf-file=" + d.confPath()}
}

// dnsmasqUser is LXD's choice: a dedicated user if there is one, else nobody/nogroup.
func dnsmasqUser() (string, string) {
	for _, u := range []string{"berth", "lxd", "dnsmasq"} {
		_, err := user.Lookup(u)
		if err == nil {
			g := "nogroup"
			_, err := user.LookupGroup(u)
			if err == nil {
				g = u
			}

			return u, g
		}
	}

	return "nobody", "nogroup"
}

// conf renders dnsmasq.conf. Every value is a parsed address, a checked name or a path of
// ours: nothing user-supplied is written raw.
func (b *bridge) dnsmasqConf() []byte {
	u, g := dnsmasqUser()
	mask := fmt.Sprintf("%d.%d.%d.%d", b.subnet.Mask[0], b.subnet.Mask[1], b.subnet.Mask[2], b.subnet.Mask[3])
	lines := []string{
		"# Written by berthd for network " + b.name + "; rewritten on every change.",
		"strict-order",
		"bind-interfaces",
		"except-interface=lo",
		"interface=" + b.name,
		"listen-address=" + b.gw.String(),
		"pid-file=",
		"user=" + u,
		"group=" + g,
		"no-ping",
		"dhcp-rapid-commit",
		"dhcp-no-override",
		"dhcp-authoritative",
		// Leases are found by the client's MAC only, which the port filter checks in every
		// DHCP message (chaddr): a client identifier is the client's word, and another's
		// (broadcast in its DISCOVER) would let a container decline or release that lease.
		"dhcp-ignore-clid",
		// Names come from the reservations alone (addn-hosts): a container cannot claim a
		// DNS name by the host name it sends.
		"dhcp-ignore-names",
		// And no host name goes back (an empty option 12 stands in for the one dnsmasq
		// would take from addn-hosts): networkd hands a DHCP host name to hostnamed, a
		// D-Bus activation on every boot's critical path, only to be refused inside a
		// container whose name berthd has set already.
		"dhcp-option=12",
		"quiet-dhcp",
		"log-facility=-", // stderr: dnsmasq.log
		// Only reserved hosts get an address: the anti-spoofing rules know every one.
		fmt.Sprintf("dhcp-range=%s,static,%s,1h", b.subnet.IP, mask),
		"dhcp-leasefile=" + filepath.Join(b.dir, "dnsmasq.leases"),
		"dhcp-hostsfile=" + filepath.Join(b.dir, "dnsmasq.hosts"),
		"addn-hosts=" + filepath.Join(b.dir, "dnsmasq.dns"),
		"domain=" + b.domain() + "," + b.subnet.String(),
		"local=/" + b.domain() + "/",
		"dhcp-option=option:domain-search," + b.domain(),
	}

	if b.prefix6 != nil {
		// Router advertisements of the /64 for SLAAC, with the O flag: DNS server and
		// search domain by stateless DHCPv6 (and RDNSS in the advertisements).
		lines = append(lines,
			"listen-address="+b.gw6.String(),
			"enable-ra",
			fmt.Sprintf("dhcp-range=%s,ra-stateless,64,1h", b.prefix6.IP),
			"dhcp-option=option6:dns-server,["+b.gw6.String()+"]",
			"dhcp-option=option6:domain-search,"+b.domain(),
		)
	}

	return []byte(strings.Join(lines, "\n") + "\n")
}

// ensure makes dnsmasq run with conf: a running one started with the same conf is adopted,
// one with another conf is restarted.
func (d *dnsmasq) ensure(conf []byte) error {
	old, _ := os.ReadFile(d.confPath())
	same := bytes.Equal(old, conf)
	if !same {
		err := atomicfile.Write(d.confPath(), conf, 0o644)
		if err != nil {
			return err
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopping = false
	pid := d.pid
	if pid == 0 {
		pid = d.findRunning()
	}

	if pid != 0 && same {
		return d.watch(pid)
	}

	if pid != 0 {
		d.killLocked(pid)
	}

	return d.spawnLocked()
}

// findRunning returns the pid in the pid file if that process is our dnsmasq.
func (d *dnsmasq) findRunning() int {
	data, err := os.ReadFile(d.pidPath())
	if err != nil {
		return 0
	}

	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}

	if !isOurProcess(pid, d.args()) {
		return 0
	}

	return pid
}

// isOurProcess compares /proc/pid/cmdline with args.
func isOurProcess(pid int, args []string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}

	return string(cmdline) == strings.Join(args, "\x00")+"\x00"
}

// Preconditions: d.mu held.
func (d *dnsmasq) spawnLocked() error {
	cmd := exec.Command("/usr/sbin/dnsmasq", d.args()[1:]...)
	cmd.Args[0] = "dnsmasq"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf, err := os.OpenFile(filepath.Join(d.dir, "dnsmasq.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err == nil {
		cmd.Stdout, cmd.Stderr = logf, logf
		defer logf.Close()
	}

	err = cmd.Start()
	if err != nil {
		return fmt.Errorf("starting dnsmasq: %w", err)
	}

	pid := cmd.Process.Pid
	// Watch before reaping: the pidfd must name this process, not a recycled pid.
	err = d.watch(pid)
	go func() { _ = cmd.Wait() }()
	if err != nil {
		_ = cmd.Process.Kill()
		return err
	}

	err = atomicfile.Write(d.pidPath(), []byte(strconv.Itoa(pid)+"\n"), 0o644)
	if err != nil {
		return err
	}

	if d.onSpawn != nil {
		d.onSpawn(pid)
	}

	// dnsmasq exits at once on a bad configuration or a busy port: catch that here.
	select {
	case <-d.exited:
		return fmt.Errorf("dnsmasq exited at start (see %s)", filepath.Join(d.dir, "dnsmasq.log"))
	case <-time.After(50 * time.Millisecond):
	}

	// A SIGHUP (reload, sent after every reservation) that arrives before dnsmasq has set
	// its handler kills it: wait until it catches SIGHUP, as /proc says.
	deadline := time.Now().Add(5 * time.Second)
	for !catchesSIGHUP(pid) && time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return fmt.Errorf("dnsmasq exited at start (see %s)", filepath.Join(d.dir, "dnsmasq.log"))
		case <-time.After(5 * time.Millisecond):
		}
	}

	return nil
}

// catchesSIGHUP reads SigCgt of /proc/<pid>/status: a hex mask, bit 0 for signal 1.
func catchesSIGHUP(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}

	for _, line := range strings.Split(string(data), "\n") {
		mask, ok := strings.CutPrefix(line, "SigCgt:")
		if ok {
			v, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && v&(1<<(unix.SIGHUP-1)) != 0
		}
	}

	return false
}

// watch opens a pidfd on pid and restarts dnsmasq if it dies while not stopping. d.pidfd
// is for signals; the watcher polls its own duplicate and closes it.
// Preconditions: d.mu held.
func (d *dnsmasq) watch(pid int) error {
	if d.pid == pid && d.pidfd >= 0 {
		return nil
	}

	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("watching dnsmasq %d: %w", pid, err)
	}

	// Close-on-exec like the pidfd (dup would drop it): no program berthd starts
	// inherits a handle on dnsmasq.
	wfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("watching dnsmasq %d: %w", pid, err)
	}

	d.pid, d.pidfd = pid, fd
	exited := make(chan struct{})
	d.exited = exited
	go func() {
		fds := []unix.PollFd{{Fd: int32(wfd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == nil || !errors.Is(err, unix.EINTR) {
				break
			}
		}

		_ = unix.Close(wfd)
		close(exited) // before locking: killLocked waits for it with d.mu held

		d.mu.Lock()
		defer d.mu.Unlock()
		if d.pidfd != fd {
			return // stopped or replaced on purpose
		}

		_ = unix.Close(fd)
		d.pid, d.pidfd = 0, -1
		if d.stopping {
			return
		}

		d.log.Warn("dnsmasq exited, restarting", "pid", pid)
		go d.restartLater()
	}()

	return nil
}

func (d *dnsmasq) restartLater() {
	time.Sleep(time.Second)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping || d.pid != 0 {
		return
	}

	err := d.spawnLocked()
	if err != nil {
		d.log.Error("restarting dnsmasq", "err", err)
	}
}

// reload makes dnsmasq re-read its hosts files (reservations, DNS records).
func (d *dnsmasq) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pidfd < 0 {
		return nil // the restart will read them
	}

	err := unix.PidfdSendSignal(d.pidfd, unix.SIGHUP, nil, 0)
	if err != nil {
		return fmt.Errorf("signalling dnsmasq: %w", err)
	}

	return nil
}

// stop ends dnsmasq and waits for it (up to 5 s).
func (d *dnsmasq) stop() {
	d.mu.Lock()
	d.stopping = true
	pid := d.pid
	if pid == 0 {
		pid = d.findRunning()
	}

	if pid != 0 {
		d.killLocked(pid)
	}

	d.mu.Unlock()
	_ = os.Remove(d.pidPath())
}

// killLocked terminates pid (ours: watched, or checked by findRunning) and waits.
// Preconditions: d.mu held.
func (d *dnsmasq) killLocked(pid int) {
	fd, exited := d.pidfd, d.exited
	if d.pid != pid || fd < 0 {
		err := d.watch(pid)
		if err != nil {
			return // already gone
		}

		fd, exited = d.pidfd, d.exited
	}

	d.pid, d.pidfd = 0, -1 // the watcher sees it was on purpose
	_ = unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		select {
		case <-exited:
		case <-time.After(time.Second):
		}
	}

	_ = unix.Close(fd)
}

// close stops supervising and leaves dnsmasq running.
func (d *dnsmasq) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopping = true
}
