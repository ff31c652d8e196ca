package container

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// makerNS holds what the host side needs of the namespaces an init maker made for init:
// the network namespace (for the tree's sysfs), opened before init exists, since the
// maker exits once it has forked init. (Init's pid namespace cannot be opened before
// init, its first process, exists; the copier holds the user namespace.)
type makerNS struct {
	net *os.File
}

func openMakerNS(pid int) (makerNS, error) {
	var ns makerNS

	for _, n := range []struct {
		name string
		f    **os.File
	}{{"net", &ns.net}} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, n.name))
		if err != nil {
			ns.close()
			return makerNS{}, fmt.Errorf("opening init's %s namespace: %w", n.name, err)
		}

		*n.f = f
	}

	return ns, nil
}

func (ns makerNS) close() {
	for _, f := range []*os.File{ns.net} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// readyMaker returns maker mk (a spare's) with its namespaces open, or, if there is none
// or it is gone (logged), a maker started now.
func readyMaker(exe *initExe, mk *initMaker, log *slog.Logger) (*initMaker, makerNS, error) {
	if mk != nil {
		err := mk.alive()
		var ns makerNS
		if err == nil {
			ns, err = openMakerNS(mk.cmd.Process.Pid)
		}

		if err == nil {
			return mk, ns, nil
		}

		mk.discard()
		log.Warn("the spare's init maker was gone: starting one", "err", err)
	}

	mk, err := spawnInitMaker(exe)
	if err != nil {
		return nil, makerNS{}, err
	}

	ns, err := openMakerNS(mk.cmd.Process.Pid)
	if err != nil {
		mk.discard()
		return nil, makerNS{}, err
	}

	return mk, ns, nil
}

// hostSide is the host side of a start (buildMountNS), running while init is forked and
// starts up.
type hostSide struct {
	pidc      chan *os.File // init's pid namespace, once init is forked
	pidGiven  bool
	procc     chan int // init's procfs context, for a host side that cannot make its own
	procGiven bool

	makeProc func(pidns int) (int, error) // setup.ProcContextFor; tests replace it
	own      int                          // the procfs context made here, or -1
	pidns    *os.File                     // init's pid namespace, once received

	done chan hostResult
	once sync.Once
	res  hostResult
}

// hostResult is what buildMountNS gives back.
type hostResult struct {
	mntns *os.File
	err   error
}

func newHostSide() *hostSide {
	return &hostSide{
		pidc:     make(chan *os.File, 1),
		procc:    make(chan int, 1),
		makeProc: setup.ProcContextFor,
		own:      -1,
		done:     make(chan hostResult, 1),
	}
}

// startHostSide starts building init's mount tree in the namespaces the maker made.
func startHostSide(cfg setup.Config, ns makerNS, cp *copier, views *viewClones, deadline time.Time) *hostSide {
	h := newHostSide()

	go func() {
		mntns, err := buildMountNS(cfg, cp, ns.net, setup.HostInputs{KernelViews: views.wait, ProcCtx: h.procContext}, deadline)
		if h.own >= 0 {
			_ = unix.Close(h.own)
		}

		if h.pidns != nil {
			_ = h.pidns.Close()
		}

		h.done <- hostResult{mntns, err}
	}()

	return h
}

// procContext is the host side's HostInputs.ProcCtx: a procfs context for init's pid
// namespace made here, once init is forked, where the kernel can (then the tree waits
// for init's fork, not for its runtime); else the one init makes as its first act.
func (h *hostSide) procContext() (int, error) {
	pidns, ok := <-h.pidc
	if !ok {
		return -1, errors.New("no init was forked")
	}

	h.pidns = pidns

	fd, err := h.makeProc(int(pidns.Fd()))
	if err == nil {
		h.own = fd
		return fd, nil
	}

	fd, ok = <-h.procc
	if !ok {
		return -1, errors.New("init gave no procfs context")
	}

	return fd, nil
}

// initForked hands the host side init's pid namespace, opened now, while pid is surely
// init (our unreaped child); the host side closes it when done.
func (h *hostSide) initForked(pid int) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return fmt.Errorf("opening init's pid namespace: %w", err)
	}

	h.pidc <- ns
	h.pidGiven = true

	return nil
}

// giveProc hands the host side init's procfs context (it may not need it); the caller
// keeps the fd.
func (h *hostSide) giveProc(fd int) {
	h.procc <- fd
	h.procGiven = true
}

// result waits for the host side's end.
func (h *hostSide) result() hostResult {
	h.once.Do(func() { h.res = <-h.done })
	return h.res
}

// finish ends the host side, telling it that no init or procfs context will come if it
// still waits for them, and closes what it made.
func (h *hostSide) finish() {
	if !h.pidGiven {
		close(h.pidc)
		h.pidGiven = true
	}

	if !h.procGiven {
		close(h.procc)
		h.procGiven = true
	}

	if res := h.result(); res.mntns != nil {
		_ = res.mntns.Close()
	}
}
