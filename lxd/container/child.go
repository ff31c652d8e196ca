package container

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/berth-dev/berth/lxd/setup"
	"golang.org/x/sys/unix"
)

// initSyncFD is the sync socket of the __init child (sync.go).
const initSyncFD = 3

// initMain is `__init`: the container's PID 1 until it execs systemd. It
// runs on the main OS thread, locked in init() (helper.go).
//
// Owns: user (root inside), pid (PID 1), mount (a copy of the host's until
// mount-ns), uts, ipc, net; later cgroup.
func initMain() int {
	f := os.NewFile(initSyncFD, "sync")
	enc := json.NewEncoder(f)
	dec := json.NewDecoder(f)

	err := runInit(f, enc, dec)
	if err != nil {
		_ = enc.Encode(syncMsg{Type: syncError, Error: err.Error()})
		fmt.Fprintln(os.Stderr, "berth init:", err)

		return 1
	}

	return 0
}

func runInit(f *os.File, enc *json.Encoder, dec *json.Decoder) error {
	msg, err := expect(dec, syncConfig)
	if err != nil {
		return err
	}

	if msg.Config == nil || msg.Version != syncVersion {
		return fmt.Errorf("unexpected config message (version %d, want %d)", msg.Version, syncVersion)
	}

	cfg := *msg.Config

	// From this copy of the host's mount namespace, where the daemon's
	// staged devices are locked mounts (setup.CloneMounts).
	trees, err := setup.CloneMounts(cfg.Mounts)
	if err != nil {
		return err
	}

	defer setup.CloseMounts(trees)

	// The procfs context the host side mounts went to the monitor before this
	// runtime started (lxd/nsexec/initproc.c).
	err = tell(enc, syncReadyForCgroup)
	if err != nil {
		return err
	}

	_, err = expect(dec, syncCgroupReady)
	if err != nil {
		return err
	}

	// We now sit in the container's cgroup: a new cgroup namespace rooted
	// there is what makes the cgroup2 mount show only the container's
	// subtree.
	err = unix.Unshare(unix.CLONE_NEWCGROUP)
	if err != nil {
		return fmt.Errorf("unsharing cgroup namespace: %w", err)
	}

	err = tell(enc, syncReadyForMountNS)
	if err != nil {
		return err
	}

	mntns, err := recvFD(f, syncMountNS)
	if err != nil {
		return err
	}

	err = joinMountNS(mntns)
	if err != nil {
		return err
	}

	err = setup.PrepareContainer(cfg, trees)
	if err != nil {
		return err
	}

	return setup.Exec(cfg, func() error { return tell(enc, syncExecing) })
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

func tell(enc *json.Encoder, t syncType) error {
	err := enc.Encode(syncMsg{Type: t})
	if err != nil {
		return fmt.Errorf("sending %s: %w", t, err)
	}

	return nil
}

func expect(dec *json.Decoder, want syncType) (syncMsg, error) {
	var msg syncMsg

	err := dec.Decode(&msg)
	if err != nil {
		return msg, fmt.Errorf("waiting for %s: %w", want, err)
	}

	if msg.Type == syncError {
		return msg, fmt.Errorf("monitor: %s", msg.Error)
	}

	if msg.Type != want {
		return msg, fmt.Errorf("got %q, want %q", msg.Type, want)
	}

	return msg, nil
}
