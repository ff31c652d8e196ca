package container

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/lxd/setup"
	"golang.org/x/sys/unix"
)

// Fds of the __init and __init-host children (monitor_init.go,
// monitor_host.go).
const (
	initSyncFD   = 3 // the sync socket (sync.go)
	initUsernsFD = 4 // __init-host: the container's user namespace
)

// initMain is `__init`: the container's PID 1 until it execs systemd. It
// runs on the main OS thread, locked in init() (helper.go).
//
// Owns: user (root inside), pid (PID 1), uts, ipc, net; later cgroup.
// Until mount-ns it sits in the monitor's mount namespace, powerless there.
func initMain() int {
	return reportChild(runInit)
}

// initHostMain is `__init-host`: host root, PID 2 of the container, in its
// network namespace and in a new mount namespace of its own, owned by the
// host's user namespace (namespaces.go). Runs on the locked main thread.
func initHostMain() int {
	return reportChild(runInitHost)
}

func reportChild(run func(f *os.File, enc *json.Encoder, dec *json.Decoder) error) int {
	f := os.NewFile(initSyncFD, "sync")
	enc := json.NewEncoder(f)
	dec := json.NewDecoder(f)

	err := run(f, enc, dec)
	if err != nil {
		_ = enc.Encode(syncMsg{Type: syncError, Error: err.Error()})
		fmt.Fprintln(os.Stderr, "berth init:", err)

		return 1
	}

	return 0
}

func runInit(f *os.File, enc *json.Encoder, dec *json.Decoder) error {
	cfg, err := readConfig(dec)
	if err != nil {
		return err
	}

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

	// Nothing is in flight now: the next message, with its fd, is read
	// with recvmsg rather than by the decoder.
	err = tell(enc, syncReadyForMountNS)
	if err != nil {
		return err
	}

	mntns, err := recvFile(f, syncMountNS)
	if err != nil {
		return err
	}

	err = joinMountNS(mntns)
	if err != nil {
		return err
	}

	err = setup.PrepareContainer(cfg)
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

func runInitHost(_ *os.File, _ *json.Encoder, dec *json.Decoder) error {
	cfg, err := readConfig(dec)
	if err != nil {
		return err
	}

	err = setup.PrepareHost(cfg)
	if err != nil {
		return err
	}

	// Only the sync socket and the user namespace may cross the exec.
	err = unix.CloseRange(initUsernsFD+1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("marking fds close-on-exec: %w", err)
	}

	// /proc is now the container's, mounted by us a moment ago, and only
	// init, which has not run anything, shares the pid namespace: its
	// self/exe is our sealed binary. initns.c takes over before Go starts.
	err = unix.Exec("/proc/self/exe", []string{"berth-init-host", helperInitHostCopy},
		[]string{fmt.Sprintf("%s=%d", nsexec.EnvInitUserns, initUsernsFD)})

	return fmt.Errorf("re-executing into the container's user namespace: %w", err)
}

func tell(enc *json.Encoder, t syncType) error {
	err := enc.Encode(syncMsg{Type: t})
	if err != nil {
		return fmt.Errorf("sending %s: %w", t, err)
	}

	return nil
}

func readConfig(dec *json.Decoder) (setup.Config, error) {
	msg, err := expect(dec, syncConfig)
	if err != nil {
		return setup.Config{}, err
	}

	if msg.Config == nil || msg.Version != syncVersion {
		return setup.Config{}, fmt.Errorf("unexpected config message (version %d, want %d)", msg.Version, syncVersion)
	}

	return *msg.Config, nil
}

// maxFileMsg bounds a message that carries an fd (sendFile).
const maxFileMsg = 4096

// recvFile reads one message of type want and the fd sent with it
// (close-on-exec).
func recvFile(f *os.File, want syncType) (int, error) {
	buf := make([]byte, maxFileMsg)
	oob := make([]byte, unix.CmsgSpace(4))

	n, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("waiting for %s: %w", want, err)
	}

	var fds []int

	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err == nil && len(cmsgs) == 1 {
		fds, err = unix.ParseUnixRights(&cmsgs[0])
	}

	var msg syncMsg

	jerr := json.Unmarshal(bytes.TrimSpace(buf[:n]), &msg)

	switch {
	case jerr != nil:
		err = fmt.Errorf("reading %s: %w", want, jerr)
	case msg.Type == syncError:
		err = fmt.Errorf("monitor: %s", msg.Error)
	case msg.Type != want:
		err = fmt.Errorf("got %q, want %q", msg.Type, want)
	case err != nil || len(fds) != 1:
		err = fmt.Errorf("%s came without its fd (%v)", want, err)
	}

	if err != nil {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}

		return -1, err
	}

	return fds[0], nil
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
