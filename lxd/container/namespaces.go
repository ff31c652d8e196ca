package container

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/berth-dev/berth/lxd/nsexec/initns"
	"github.com/berth-dev/berth/lxd/setup"
	"golang.org/x/sys/unix"
)

// How init gets a mount tree its root cannot undo.
//
// The kernel locks a mount (MNT_LOCKED: no unmount; MNT_LOCK_READONLY and
// friends: no remount that clears read-only, nosuid, nodev or noexec) when a
// mount namespace owned by one user namespace is copied into one owned by a
// less privileged one. Every mount the container's root makes in its own
// mount namespace stays removable, so the masks over /proc and /sys must be
// made by host root in a mount namespace owned by the initial user
// namespace, and reach init as such a copy:
//
//  1. init (setup.InitMain) is forked by an init maker (initclone.go) in new
//     user, mount, pid, net, uts and ipc namespaces. First it opens a procfs
//     fs_context (on kernels without procfs's pidns parameter only a process
//     of the container's pid namespace can make one that shows it) and hands
//     that to the monitor (proc-context); then it clones the devices the
//     daemon staged (setup.CloneMounts says why from there) and says
//     ready-for-cgroup.
//  2. buildMountNS, from the moment init's namespaces exist (the init
//     maker made them before init), while init is forked and its Go runtime
//     starts: a goroutine of the monitor locks its OS thread and gives it a
//     mount namespace of its own (a copy of the host's, owned by the initial
//     user namespace) and the container's network namespace (for its
//     sysfs). There, as host root, setup.PrepareHost builds the tree,
//     mounting a procfs of init's pid namespace (made there with the pidns
//     parameter, else from init's fs_context once it arrives), and pivots
//     into the rootfs. The thread is never unlocked, so the runtime destroys
//     it afterwards.
//  3. The copy needs a single-threaded process in that mount namespace that
//     joins the container's user namespace: the copier (berth-init, or
//     berthd `__mount-copier`, in the mode of lxd/nsexec/initns), started from
//     the thread before the pivot and waiting in lxd/nsexec/initns/initns.c (no Go
//     runtime starts in it). Told to go, it joins and unshares CLONE_NEWNS;
//     the monitor opens that mount namespace and passes it to init, which
//     joins it (its user namespace owns it) and finishes as the container's
//     root. The copier exits.

// copierGrace bounds how long a copier that has done its work may take to
// exit once told to.
const copierGrace = 5 * time.Second

// buildMountNS builds the container's mount tree for init, whose user and network
// namespaces are userns and netns, and returns the locked copy's mount namespace; the
// copier runs exe. in gives the procfs context and the kernel views' clones. It runs while
// init is forked and starts up.
func buildMountNS(cfg setup.Config, userns, netns *os.File, exe *initExe, in setup.HostInputs, deadline time.Time) (*os.File, error) {
	sock, child, err := syncPair("copier")
	if err != nil {
		return nil, err
	}

	defer func() { _ = child.Close() }() // closed after the copier's start too; this covers a failure before it

	defer func() { _ = sock.Close() }()

	copier := &exec.Cmd{
		Path:       exe.path, // berth-init's sealed copy, or ours
		Args:       exe.copierArgs(),
		Env:        []string{fmt.Sprintf("%s=%d", initns.EnvUserns, 4)},
		Dir:        "/",
		ExtraFiles: []*os.File{child, userns}, // fds 3 and 4
	}

	_ = sock.SetDeadline(deadline)
	dec := json.NewDecoder(sock)

	err = onHostThread(netns, func() error {
		err := copier.Start()
		_ = child.Close()

		if err != nil {
			return fmt.Errorf("starting the mount namespace copier: %w", err)
		}

		// The copier shares this thread's mount namespace, whose root PrepareHost
		// pivots into the container's tree: a copier still in its dynamic loader
		// would then look for berthd's libraries there and die (seen on a loaded
		// host). It says when it is past that.
		_, err = expectFromChild(dec, setup.SyncCopierStarted)
		if err != nil {
			return fmt.Errorf("starting the mount namespace copier: %w", err)
		}

		return setup.PrepareHost(cfg, in)
	})
	if copier.Process == nil {
		return nil, err
	}

	// Closing the socket lets a copier that has reported exit. Once init
	// can have the namespace (we hold it open), nothing waits for that: the
	// copier is reaped in the background, off the start's critical path.
	handedOver := false

	defer func() {
		if handedOver {
			go reapCopier(copier, sock)
			return
		}

		reapCopier(copier, sock)
	}()

	if err != nil {
		_ = copier.Process.Kill()
		return nil, err
	}

	err = json.NewEncoder(sock).Encode(setup.SyncMsg{Type: setup.SyncCopyMountNS})
	if err != nil {
		return nil, fmt.Errorf("sending %s: %w", setup.SyncCopyMountNS, err)
	}

	_, err = expectFromChild(dec, setup.SyncMountNSReady)
	if err != nil {
		_ = copier.Process.Kill()
		return nil, fmt.Errorf("copying the mount namespace: %w", err)
	}

	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", copier.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening the container's mount namespace: %w", err)
	}

	handedOver = true

	return f, nil
}

// reapCopier closes the copier's socket, which tells it to exit, and waits
// for it, killing it if it takes longer than copierGrace.
func reapCopier(copier *exec.Cmd, sock *os.File) {
	_ = sock.Close()

	done := make(chan struct{})
	go func() {
		_ = copier.Wait()
		close(done)
	}()

	select {
	case <-done:
	case <-time.After(copierGrace):
		_ = copier.Process.Kill()
		<-done
	}
}

// onHostThread runs fn on a locked OS thread that has a mount namespace of
// its own (a copy of ours) and has joined netns. The thread is never
// unlocked: it dies with the goroutine.
func onHostThread(netns *os.File, fn func() error) error {
	errc := make(chan error, 1)

	go func() {
		runtime.LockOSThread()

		// CLONE_NEWNS also unshares the thread's filesystem state (root,
		// cwd, umask) from the other threads'.
		err := unix.Unshare(unix.CLONE_NEWNS)
		if err != nil {
			errc <- fmt.Errorf("unsharing a mount namespace: %w", err)
			return
		}

		err = unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET)
		if err != nil {
			errc <- fmt.Errorf("joining the container's network namespace: %w", err)
			return
		}

		errc <- fn()
	}()

	return <-errc
}
