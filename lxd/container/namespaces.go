package container

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
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
//  1. init (setup.InitMain) is forked ahead by an init maker (initclone.go) in
//     new user, pid, net, uts and ipc namespaces, and waits for its config.
//     Given it (the monitor wrote the id maps first), it becomes the
//     container's root, copies the host's mount namespace, opens a procfs
//     fs_context (on kernels without procfs's pidns parameter only a process
//     of the container's pid namespace can make one that shows it) and hands
//     that to the monitor (proc-context); then it clones the devices the
//     daemon staged (setup.CloneMounts says why from there) and waits for
//     mount-ns (step 3), which also says it is in its cgroups.
//  2. buildMountNS, as the start begins (init and its namespaces exist
//     already): a goroutine of the monitor locks its OS thread and gives it a
//     mount namespace of its own (a copy of the host's, owned by the initial
//     user namespace) and the container's network namespace (for its
//     sysfs). There, as host root, setup.PrepareHost builds the tree,
//     mounting a procfs of init's pid namespace (made there with the pidns
//     parameter, else from init's fs_context once it arrives), and pivots
//     into the rootfs. The thread is never unlocked, so the runtime destroys
//     it afterwards.
//  3. The copy needs a single-threaded process that joins that mount
//     namespace, then the container's user namespace: the copier (berth-init,
//     or berthd `__mount-copier`, in the mode of lxd/nsexec/initns), started
//     ahead with init (a spare's while it waits) and waiting in
//     lxd/nsexec/initns/initns.c (no Go runtime starts in it). Told to go,
//     with an fd of the thread's mount namespace, it joins it, joins the user
//     namespace and unshares CLONE_NEWNS; the monitor opens that mount
//     namespace and passes it to init, which joins it (its user namespace owns
//     it) and finishes as the container's root. The copier exits.

// copierGrace bounds how long a copier that has done its work may take to
// exit once told to.
const copierGrace = 5 * time.Second

// buildMountNS builds the container's mount tree for init, whose network namespace is
// netns, and has cp copy it into init's user namespace; it returns the locked copy's
// mount namespace. in gives the procfs context and the kernel views' clones. It runs
// while init is forked and starts up.
func buildMountNS(cfg setup.Config, cp *copier, netns *os.File, in setup.HostInputs, deadline time.Time) (*os.File, error) {
	var built *os.File

	err := onHostThread(netns, func() error {
		// Opened here, through the host's /proc, before the pivot.
		f, err := os.Open("/proc/thread-self/ns/mnt")
		if err != nil {
			return fmt.Errorf("opening the host side's mount namespace: %w", err)
		}

		built = f

		return setup.PrepareHost(cfg, in)
	})
	if built != nil {
		defer func() { _ = built.Close() }()
	}

	if err != nil {
		return nil, err
	}

	return cp.copy(built, deadline)
}

// copier is a mount namespace copier (lxd/nsexec/initns/initns.c) started ahead, in our
// mount namespace, holding init's user namespace: told to, it joins the mount namespace
// the host side built the tree in, then init's user namespace, and copies it there.
type copier struct {
	cmd  *exec.Cmd
	sock *os.File
	dec  *json.Decoder
	once sync.Once
}

// startCopier starts a copier running exe for the user namespace userns. It does not wait
// for it: its exec and dynamic loader run meanwhile (copy reads its first line).
func startCopier(exe *initExe, userns *os.File) (*copier, error) {
	sock, child, err := syncPair("copier")
	if err != nil {
		return nil, err
	}

	cmd := &exec.Cmd{
		Path:       exe.path, // berth-init's sealed copy, or ours
		Args:       exe.copierArgs(),
		Env:        []string{fmt.Sprintf("%s=%d", initns.EnvUserns, 4)},
		Dir:        "/",
		ExtraFiles: []*os.File{child, userns}, // fds 3 and 4
	}

	err = cmd.Start()
	_ = child.Close()

	if err != nil {
		_ = sock.Close()
		return nil, fmt.Errorf("starting the mount namespace copier: %w", err)
	}

	return &copier{cmd: cmd, sock: sock, dec: json.NewDecoder(sock)}, nil
}

// copy has the copier join mntns and copy it into init's user namespace; it returns the
// copy, which we hold open, and lets the copier go.
func (cp *copier) copy(mntns *os.File, deadline time.Time) (*os.File, error) {
	defer cp.end()

	_ = cp.sock.SetDeadline(deadline)

	_, err := expectFromChild(cp.dec, setup.SyncCopierStarted)
	if err != nil {
		return nil, fmt.Errorf("starting the mount namespace copier: %w", err)
	}

	line, _ := json.Marshal(setup.SyncMsg{Type: setup.SyncCopyMountNS})
	err = setup.SendLine(cp.sock, append(line, '\n'), int(mntns.Fd()))
	if err != nil {
		return nil, fmt.Errorf("sending %s: %w", setup.SyncCopyMountNS, err)
	}

	_, err = expectFromChild(cp.dec, setup.SyncMountNSReady)
	if err != nil {
		return nil, fmt.Errorf("copying the mount namespace: %w", err)
	}

	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", cp.cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening the container's mount namespace: %w", err)
	}

	return f, nil
}

// end lets the copier go, once: closing its socket tells it to exit, and it is reaped in
// the background (off the start's path), killed if it lingers.
func (cp *copier) end() {
	cp.once.Do(func() { go reapCopier(cp.cmd, cp.sock) })
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
