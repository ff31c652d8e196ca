package network

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// RemoveOrphanDnsmasqs stops every dnsmasq of a Berth network whose directory is gone,
// including those no bridge alias names any more, which RemoveOrphans cannot find: a
// dnsmasq outlives berthd on purpose, so one started by a daemon killed before it recorded
// the pid (in the pid file and the bridge's alias), or left when its bridge was deleted
// behind the daemon's back, would otherwise run for ever. One was seen left by a passing
// integration run.
//
// They are found by their command line, which is Berth's alone (dnsmasq.args): exactly
// "dnsmasq --keep-in-foreground --conf-file=<state>/networks/<name>/dnsmasq.conf". It
// reads every process's comm, so berthd runs it in the background at start (a host with
// 500 containers has thousands of processes).
//
// Only processes in berthd's own user namespace, run by root or by the user Berth's
// dnsmasq drops to, are looked at. A container's processes are visible in the host's
// /proc too, and its root (or any local user) can run one shaped like an orphan: berthd
// would then stat a host path they chose and signal the process or not, telling them
// whether that path exists.
func RemoveOrphanDnsmasqs(log *slog.Logger) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}

	ours, err := os.Stat("/proc/self/ns/user")
	if err != nil {
		return
	}

	owners := dnsmasqOwners()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}

		dir, ok := dnsmasqNetworkDir(pid, ours, owners)
		if !ok {
			continue
		}

		_, err = os.Stat(dir)
		if !errors.Is(err, os.ErrNotExist) {
			continue
		}

		log.Info("stopping dnsmasq left by a deleted network directory", "pid", pid, "dir", dir)
		stopIfStill(pid, newDnsmasq(dir, log).args())
	}
}

// dnsmasqOwners are the real uids a Berth dnsmasq runs with: root until it drops its
// privileges, then dnsmasqUser's.
func dnsmasqOwners() []string {
	owners := []string{"0"}
	name, _ := dnsmasqUser()
	u, err := user.Lookup(name)
	if err == nil {
		owners = append(owners, u.Uid)
	}

	return owners
}

// dnsmasqNetworkDir returns the network directory of process pid if it is a Berth
// network's dnsmasq: in the user namespace userns (the stat of a /proc/<pid>/ns/user),
// run by one of owners (real uids).
func dnsmasqNetworkDir(pid int, userns os.FileInfo, owners []string) (string, bool) {
	proc := "/proc/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(proc + "/comm")
	if err != nil || string(bytes.TrimSpace(comm)) != "dnsmasq" {
		return "", false
	}

	ns, err := os.Stat(proc + "/ns/user")
	if err != nil || !os.SameFile(ns, userns) {
		return "", false
	}

	if !slices.Contains(owners, realUID(proc)) {
		return "", false
	}

	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return "", false
	}

	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	if len(args) != 3 || args[0] != "dnsmasq" || args[1] != "--keep-in-foreground" {
		return "", false
	}

	conf, ok := strings.CutPrefix(args[2], "--conf-file=")
	if !ok || !filepath.IsAbs(conf) || filepath.Clean(conf) != conf || filepath.Base(conf) != "dnsmasq.conf" {
		return "", false
	}

	dir := filepath.Dir(conf)
	if filepath.Base(filepath.Dir(dir)) != "networks" {
		return "", false
	}

	return dir, true
}

// realUID is the real uid of the process at proc ("/proc/<pid>"), or "" if unknown.
func realUID(proc string) string {
	status, err := os.ReadFile(proc + "/status")
	if err != nil {
		return ""
	}

	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return f[0]
			}
		}
	}

	return ""
}

// stopIfStill sends SIGTERM to pid if, once a pidfd holds it, it still runs with args:
// the pidfd keeps a recycled pid from being signalled.
func stopIfStill(pid int, args []string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}

	defer func() { _ = unix.Close(fd) }()
	if isOurProcess(pid, args) {
		_ = unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
	}
}
