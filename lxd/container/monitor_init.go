package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// setupTimeout bounds the child's work between clone and exec: tens of milliseconds
// normally, seconds on a host running flat out (hundreds of boots on 2 cores took over
// 30 s). It only catches a setup that hangs, so it is generous.
const setupTimeout = 2 * time.Minute

// initProc is one running init and its console.
type initProc struct {
	proc   *os.Process   // our child: Wait reaps it, also after the monitor re-executed itself
	master *os.File      // console pty master, drained into the ring
	slave  *os.File      // kept open so the master never sees a hangup between opens
	setup  time.Duration // from startInit to init's exec
}

func (p *initProc) pid() int { return p.proc.Pid }

func (p *initProc) closeConsole() {
	_ = p.slave.Close()
	_ = p.master.Close()
}

// initEnv builds PID 1's environment (CONTAINER_INTERFACE.md).
func initEnv(spec Spec) []string {
	env := map[string]string{
		"container":      "berth",
		"container_uuid": strings.ReplaceAll(spec.UUID, "-", ""),
		"PATH":           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"TERM":           "linux",
	}

	if spec.UUID == "" {
		delete(env, "container_uuid")
	}

	for k, v := range spec.Env {
		env[k] = v
	}

	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}

	return out
}

// startInit takes the container's init made ahead (initclone.go), or makes one, and walks
// it through the sync protocol (sync.go) while the host side builds its mount tree in the
// namespaces init was made in (namespaces.go); it returns once init has exec'd systemd.
func (m *monitor) startInit() (*initProc, error) {
	t0 := time.Now()

	// lxcfs's views are cloned meanwhile (setup.CloneKernelViews says why).
	mounts, _ := m.mounts()
	views := cloneViews(mounts, m.held)
	m.held = nil
	defer views.close()

	exe, mk := takeInit()
	defer exe.close() // once the maker, init and the copier have run it

	mk, netns, err := readyMaker(exe, mk, m.log)
	if err != nil {
		return nil, err
	}

	defer func() { _ = netns.Close() }()

	// Init exists already: its cgroups are made and it is moved in from now on, beside the
	// rest of its setup (it runs nothing of the container before setup.SyncMountNS).
	// Every return waits for that: a failed start removes the cgroups after us.
	placed := m.startPlacing(mk.init.Pid)
	defer func() { _ = placed.wait() }()

	// A failed start kills init, then waits for the placement, and only then reaps init:
	// reaped, its pid could be another process's by the time the placement moves "init"
	// into the container's cgroup, which the failed start then kills.
	kill := func(p *os.Process) {
		_ = p.Kill()
		_ = placed.wait()
	}

	// The host side makes init's procfs at once.
	pidns, err := openNS(mk.init.Pid, "pid")
	if err != nil {
		kill(mk.init)
		mk.discard()
		return nil, err
	}

	cfg := m.initConfig(mk.slave.Name(), mounts)
	host := startHostSide(cfg, netns, pidns, mk.copier, views, t0.Add(setupTimeout))
	// Whatever happens, the host side has ended and its copier is done when we return;
	// on a failure, before init and its console go (the host side may still use them).
	defer host.finish()

	proc, err := mk.mapIDs(m.spec.IDMap)
	if err != nil {
		host.finish()
		kill(mk.init)
		mk.discard()

		return nil, err
	}

	err = m.syncInit(mk.sync, cfg, host, placed, time.Now().Add(setupTimeout))
	if err != nil {
		host.finish()
		kill(proc)
		_, _ = proc.Wait()
		mk.discard()

		return nil, err
	}

	_ = mk.sync.Close()
	p := &initProc{proc: proc, master: mk.master, slave: mk.slave, setup: time.Since(t0)}

	return p, nil
}

// initConfig is init's setup.Config, with console the pty slave it gets.
func (m *monitor) initConfig(console string, mounts []Mount) setup.Config {
	cfg := setup.Config{
		Rootfs:      m.spec.Rootfs,
		Hostname:    m.spec.hostname(),
		Console:     console,
		Env:         initEnv(m.spec),
		Init:        setup.DefaultInit,
		DropCaps:    setup.DefaultDropCaps,
		Mounts:      mounts,
		RootUID:     uint32(m.spec.IDMap.HostUID),
		RootGID:     uint32(m.spec.IDMap.HostGID),
		MemoryLimit: m.spec.Limits.MemoryBytes,
	}

	if m.spec.Seccomp != nil {
		cfg.Seccomp = m.spec.Seccomp.Program
	}

	return cfg
}

// syncPair makes a sync socketpair (SOCK_STREAM; socketPair).
func syncPair(name string) (parent, child *os.File, err error) {
	return socketPair(unix.SOCK_STREAM, name)
}

// socketPair makes a unix socketpair of type typ: our end non-blocking (the runtime
// poller then gives it deadlines), the child's to pass as an ExtraFile.
func socketPair(typ int, name string) (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("creating %s socket: %w", name, err)
	}

	_ = unix.SetNonblock(fds[0], true)

	return os.NewFile(uintptr(fds[0]), "sync-monitor-"+name), os.NewFile(uintptr(fds[1]), "sync-"+name), nil
}

// syncInit runs init's setup (syncSteps) and names a timeout as what it is.
func (m *monitor) syncInit(sock *os.File, cfg setup.Config, host *hostSide, placed *placing, deadline time.Time) error {
	err := m.syncSteps(sock, cfg, host, placed, deadline)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("the container's setup did not finish within %s (is the host overloaded?): %w", setupTimeout, err)
	}

	return err
}

func (m *monitor) syncSteps(sock *os.File, cfg setup.Config, host *hostSide, placed *placing, deadline time.Time) error {
	_ = sock.SetDeadline(deadline)

	enc := json.NewEncoder(sock)
	dec := json.NewDecoder(sock)

	// Init's procfs context, which the host side may want; it goes when we return (by
	// then the host side has ended: startInit's host.finish runs after this).
	procCtx := -1
	defer func() {
		if procCtx >= 0 {
			host.finish()
			_ = unix.Close(procCtx)
		}
	}()

	err := send(enc, setup.SyncMsg{Type: setup.SyncConfig, Version: setup.SyncVersion, Config: &cfg})
	if err != nil {
		return err
	}

	// Init now becomes the container's root and copies the host's mount namespace, while
	// its cgroups are still being made (startInit began that).

	// Init's first message (setup.InitMain): a host side that could not make a procfs
	// for init's pid namespace itself (setup.ProcContextFor) mounts this one.
	fd, err := setup.RecvFD(sock, setup.SyncProcContext)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}

	procCtx = fd
	host.giveProc(fd)

	// mount-ns also tells init that it sits in its cgroups: it then unshares its
	// cgroup namespace, rooted there. Init sends nothing meanwhile but an error, which
	// the read after mount-ns returns; on our own failures, initFailed looks for one.
	err = placed.wait()
	if err != nil {
		_ = enc.Encode(setup.SyncMsg{Type: setup.SyncError, Error: err.Error()})
		return initFailed(sock, dec, err)
	}

	res := host.result()
	if res.err != nil {
		_ = enc.Encode(setup.SyncMsg{Type: setup.SyncError, Error: res.err.Error()})
		return initFailed(sock, dec, res.err)
	}

	err = setup.SendFD(sock, setup.SyncMsg{Type: setup.SyncMountNS}, int(res.mntns.Fd()))
	if err != nil {
		// Init died (it said why before it exited, which says more than EPIPE).
		return initFailed(sock, dec, err)
	}

	_, err = expectFromChild(dec, setup.SyncExecing)
	if err != nil {
		return err
	}

	// After execing, only an error message or EOF (exec closed the
	// socket) can follow.
	var last setup.SyncMsg

	err = dec.Decode(&last)
	if errors.Is(err, io.EOF) {
		return nil
	}

	if err != nil {
		return fmt.Errorf("waiting for init to exec: %w", err)
	}

	return fmt.Errorf("starting init: %s", last.Error)
}

// placing is placeInit running in the background.
type placing struct {
	done chan struct{}
	err  error
}

// startPlacing runs placeInit(pid) in the background: making the cgroups (clearing a
// crashed run's or, on a reboot, the last boot's, then a directory and limits in every
// hierarchy, a few milliseconds on a slow host) would otherwise hold init back.
func (m *monitor) startPlacing(pid int) *placing {
	p := &placing{done: make(chan struct{})}
	go func() {
		p.err = m.placeInit(pid)
		close(p.done)
	}()

	return p
}

// wait returns placeInit's result once it has ended; it may be asked again.
func (p *placing) wait() error {
	<-p.done
	return p.err
}

// placeInit makes the container's cgroups and moves init (pid) into them, its root
// owning what systemd may write there.
func (m *monitor) placeInit(pid int) error {
	err := m.createCgroups()
	if err != nil {
		return fmt.Errorf("creating cgroups: %w", err)
	}

	err = m.cg.AddProc(pid)
	if err == nil {
		err = m.cg.Delegate(int(m.spec.IDMap.HostUID), int(m.spec.IDMap.HostGID))
	}

	if err != nil {
		return fmt.Errorf("placing init in its cgroup: %w", err)
	}

	return nil
}

// viewClones runs setup.CloneKernelViews in the background; the host side waits for it.
type viewClones struct {
	done  chan struct{}
	trees []int
	err   error
}

// cloneViews clones from held where it can, and closes held.
func cloneViews(mounts []Mount, held map[string]int) *viewClones {
	v := &viewClones{done: make(chan struct{})}
	go func() {
		v.trees, v.err = setup.CloneKernelViews(mounts, held)
		closeHeld(held)
		close(v.done)
	}()

	return v
}

func closeHeld(held map[string]int) {
	for _, fd := range held {
		_ = unix.Close(fd)
	}
}

func (v *viewClones) wait() ([]int, error) {
	<-v.done
	return v.trees, v.err
}

// close closes the clones once made: after the host side attached them, or failed.
func (v *viewClones) close() {
	<-v.done
	setup.CloseMounts(v.trees)
}

func send(enc *json.Encoder, msg setup.SyncMsg) error {
	err := enc.Encode(msg)
	if err != nil {
		return fmt.Errorf("sending %s to init: %w", msg.Type, err)
	}

	return nil
}

// initSaysWithin bounds how long a failed start looks for init's own error (initFailed).
const initSaysWithin = 100 * time.Millisecond

// initFailed returns the error init sent, if it sent one (within initSaysWithin: init
// that has not failed is waiting for mount-ns and sends nothing), else err: when a start
// fails on both sides, init's error is usually the cause (a setup step of the container
// that failed), and the monitor's a consequence (a host side that lost init).
func initFailed(sock *os.File, dec *json.Decoder, err error) error {
	_ = sock.SetReadDeadline(time.Now().Add(initSaysWithin))

	var msg setup.SyncMsg
	if dec.Decode(&msg) == nil && msg.Type == setup.SyncError {
		return fmt.Errorf("setting up container: %s", msg.Error)
	}

	return err
}

func expectFromChild(dec *json.Decoder, want setup.SyncType) (setup.SyncMsg, error) {
	var msg setup.SyncMsg

	err := dec.Decode(&msg)
	if errors.Is(err, io.EOF) {
		return msg, fmt.Errorf("init exited before %s", want)
	}

	if err != nil {
		return msg, fmt.Errorf("waiting for %s from init: %w", want, err)
	}

	if msg.Type == setup.SyncError {
		return msg, fmt.Errorf("setting up container: %s", msg.Error)
	}

	if msg.Type != want {
		return msg, fmt.Errorf("unexpected %q from init, want %q", msg.Type, want)
	}

	return msg, nil
}
