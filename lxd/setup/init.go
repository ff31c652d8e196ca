package setup

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitSyncFD is the sync socket of the __init child (sync.go).
const InitSyncFD = 3

// InitMain is the container's init until it execs systemd: the berth-init binary
// (lxd/berth-init), or berthd's `__init` where that binary is not embedded. An init maker
// forked it ahead of its start (lxd/nsexec/initns/initclone.c), in new user, pid,
// network, uts and ipc namespaces, with no id mapped yet. It runs on the main OS thread,
// locked before main.
//
// Owns: user (root inside, once its config came), pid (PID 1), mount (a copy of the
// host's made then, until mount-ns), uts, ipc, net; later cgroup.
func InitMain() int {
	f := os.NewFile(InitSyncFD, "sync")
	enc := json.NewEncoder(f)
	dec := json.NewDecoder(f)
	// A monitor of another build (an out-of-date embedded berth-init) could send
	// settings this init would otherwise drop without a word: a mask, a capability.
	dec.DisallowUnknownFields()

	warmCodec()

	err := runInit(f, enc, dec)
	if err != nil {
		_ = enc.Encode(SyncMsg{Type: SyncError, Error: err.Error()})
		fmt.Fprintln(os.Stderr, "berth init:", err)

		return 1
	}

	return 0
}

// warmCodec decodes and encodes sync messages like those to come while init waits for its
// config (it was made ahead, spare.go): encoding/json builds a type's codec on its first
// use, and that, with the first page faults of its code, would otherwise take about a
// millisecond of the start's path.
func warmCodec() {
	var msg SyncMsg

	_ = json.Unmarshal([]byte(`{"type":"config","version":1,"config":{"rootfs":"/","env":["A=B"],`+
		`"init":["/sbin/init"],"drop_caps":[1],"mounts":[{"source":"/","target":"/"}],"seccomp":"AAAA"}}`), &msg)
	_ = json.NewEncoder(io.Discard).Encode(SyncMsg{Type: SyncExecing})
}

// becomeRoot makes init the container's root in every thread of its runtime (the syscall
// package's calls, through libc's broadcast here: a raw system call would change one
// thread only), and gives its locked thread a copy of the host's
// mount namespace as it is now, made in the container's user namespace: there the host's
// mounts, those the daemon staged for this start among them, are locked (CloneMounts).
// The monitor wrote the id maps before it sent the config. Root keeps the capabilities
// init holds in its user namespace.
func becomeRoot() error {
	err := syscall.Setgroups(nil)
	if err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}

	err = syscall.Setresgid(0, 0, 0)
	if err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}

	err = syscall.Setresuid(0, 0, 0)
	if err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}

	// On this locked thread only, which is the one that execs systemd (joinMountNS): the
	// runtime's other threads keep the host's mount namespace, root and cwd until that
	// exec ends them, so no goroutine of init may resolve a path; all of init's work
	// runs here (lxd/setup and lxd/confine start no goroutines).
	err = unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS)
	if err != nil {
		return fmt.Errorf("copying the host's mount namespace: %w", err)
	}

	return nil
}

func sendProcContext(f *os.File) error {
	proc, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("opening a procfs context: %w", err)
	}

	defer func() { _ = unix.Close(proc) }()

	return SendFD(f, SyncMsg{Type: SyncProcContext}, proc)
}

func runInit(f *os.File, enc *json.Encoder, dec *json.Decoder) error {
	msg, err := expect(dec, SyncConfig)
	if err != nil {
		return err
	}

	if msg.Config == nil || msg.Version != SyncVersion {
		return fmt.Errorf("unexpected config message (version %d, want %d)", msg.Version, SyncVersion)
	}

	cfg := *msg.Config

	err = becomeRoot()
	if err != nil {
		return err
	}

	// Then the procfs context the monitor's host side mounts as the container's /proc
	// where it cannot make one itself: only a process of the container's pid namespace
	// can make one that shows it. After becomeRoot: fsopen needs CAP_SYS_ADMIN over the
	// owner of the caller's mount namespace, the container's user namespace only now.
	err = sendProcContext(f)
	if err != nil {
		return err
	}

	// From this copy of the host's mount namespace, where the daemon's
	// staged devices are locked mounts (CloneMounts).
	trees, err := CloneMounts(cfg.Mounts)
	if err != nil {
		return err
	}

	defer CloseMounts(trees)

	// mount-ns comes once the monitor has placed us in the container's cgroups (it
	// sends nothing before, but an error).
	mntns, err := RecvFD(f, SyncMountNS)
	if err != nil {
		return err
	}

	// We now sit in the container's cgroup: a new cgroup namespace rooted
	// there is what makes the cgroup2 mount show only the container's
	// subtree.
	err = unix.Unshare(unix.CLONE_NEWCGROUP)
	if err != nil {
		_ = unix.Close(mntns)
		return fmt.Errorf("unsharing cgroup namespace: %w", err)
	}

	err = joinMountNS(mntns)
	if err != nil {
		return err
	}

	err = PrepareContainer(cfg, trees)
	if err != nil {
		return err
	}

	return Exec(cfg, func() error { return tell(enc, SyncExecing) })
}

// joinMountNS enters the container's locked mount namespace on this thread,
// which exec then makes the process's: setns refuses a thread that shares
// its filesystem state, as Go's threads do, so this one stops sharing it.
// The kernel moves root and cwd to the namespace's root, the rootfs.
func joinMountNS(fd int) error {
	defer func() { _ = unix.Close(fd) }()

	err := unix.Unshare(unix.CLONE_FS)
	if err != nil {
		return fmt.Errorf("unsharing fs state: %w", err)
	}

	err = unix.Setns(fd, unix.CLONE_NEWNS)
	if err != nil {
		return fmt.Errorf("joining the container's mount namespace: %w", err)
	}

	return nil
}

func tell(enc *json.Encoder, t SyncType) error {
	err := enc.Encode(SyncMsg{Type: t})
	if err != nil {
		return fmt.Errorf("sending %s: %w", t, err)
	}

	return nil
}

func expect(dec *json.Decoder, want SyncType) (SyncMsg, error) {
	var msg SyncMsg

	err := dec.Decode(&msg)
	if err != nil {
		return msg, fmt.Errorf("waiting for %s: %w", want, err)
	}

	if msg.Type == SyncError {
		return msg, fmt.Errorf("monitor: %s", msg.Error)
	}

	if msg.Type != want {
		return msg, fmt.Errorf("got %q, want %q", msg.Type, want)
	}

	return msg, nil
}
