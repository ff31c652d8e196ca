package container

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Why init's mount tree comes from a second process.
//
// The kernel locks a mount (MNT_LOCKED: no unmount; MNT_LOCK_READONLY and
// friends: no remount that clears read-only, nosuid, nodev or noexec) when a
// mount namespace owned by one user namespace is copied into one owned by a
// less privileged one. Every mount made by the container's own root in its
// own mount namespace stays removable, so the masks over /proc and /sys must
// be made by host root in a mount namespace owned by the initial user
// namespace, and reach init as such a copy.
//
// Namespace ownership is fixed at creation, and the kernel will not let
// anyone join a pid namespace before its PID 1 exists (pid_for_children
// cannot be opened until then). So:
//
//  1. init (`__init`) is cloned as before into new user, pid, net, uts and
//     ipc namespaces: they are owned by the container's user namespace, and
//     init is PID 1. It stays in the monitor's mount namespace, where it can
//     do nothing, until step 3.
//  2. The host side (`__init-host`) is started from a thread that has joined
//     init's net and pid namespaces (startHostSide), with CLONE_NEWNS: host
//     root, PID 2 of the container, in a fresh mount namespace owned by the
//     initial user namespace. It builds the tree (setup.PrepareHost), pivots,
//     and re-executes itself; lxd/nsexec/initns.c then joins the container's
//     user namespace and unshares the mount namespace: the locked copy.
//  3. The monitor opens that mount namespace and passes it to init, which
//     joins it (a user namespace owns it, in which init has every
//     capability), adds what the container owns itself and execs systemd.
//     The host side exits.

// startHostSide starts cmd from a thread in the net and pid namespaces of
// init (initPID): its sysfs is then the container network's, and its procfs
// the container's processes. cmd stays host root in our user namespace; its
// own clone flags apply on top. The thread is never unlocked, so the
// runtime destroys it when the goroutine ends.
func startHostSide(initPID int, cmd *exec.Cmd) error {
	errc := make(chan error, 1)

	go func() {
		runtime.LockOSThread()

		for _, n := range []struct {
			name string
			flag int
		}{{"net", unix.CLONE_NEWNET}, {"pid", unix.CLONE_NEWPID}} {
			err := joinNS(initPID, n.name, n.flag)
			if err != nil {
				errc <- err
				return
			}
		}

		errc <- cmd.Start()
	}()

	err := <-errc
	if err != nil {
		return fmt.Errorf("starting the host side of the setup: %w", err)
	}

	return nil
}

func joinNS(pid int, name string, flag int) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, name))
	if err != nil {
		return fmt.Errorf("opening the container's %s namespace: %w", name, err)
	}

	defer func() { _ = f.Close() }()

	err = unix.Setns(int(f.Fd()), flag)
	if err != nil {
		return fmt.Errorf("joining the container's %s namespace: %w", name, err)
	}

	return nil
}
