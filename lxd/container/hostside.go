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

// openNetNS opens the network namespace of init (pid), the one the host side needs (for
// the tree's sysfs).
func openNetNS(pid int) (*os.File, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("opening init's network namespace: %w", err)
	}

	return f, nil
}

// readyMaker returns mk, the init a spare made ahead, with its network namespace open, or,
// if there is none or it is gone (logged), an init made now.
func readyMaker(exe *initExe, mk *initMaker, log *slog.Logger) (*initMaker, *os.File, error) {
	if mk != nil {
		err := mk.alive()
		var netns *os.File
		if err == nil {
			netns, err = openNetNS(mk.init.Pid)
		}

		if err == nil {
			return mk, netns, nil
		}

		mk.discard()
		log.Warn("the spare's init was gone: making one", "err", err)
	}

	mk, err := spawnInitMaker(exe)
	if err != nil {
		return nil, nil, err
	}

	netns, err := openNetNS(mk.init.Pid)
	if err != nil {
		mk.discard()
		return nil, nil, err
	}

	return mk, netns, nil
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

// startHostSide starts building init's mount tree in the network namespace the maker made
// (netns) and has cp copy it.
func startHostSide(cfg setup.Config, netns *os.File, cp *copier, views *viewClones, deadline time.Time) *hostSide {
	h := newHostSide()

	go func() {
		mntns, err := buildMountNS(cfg, cp, netns, setup.HostInputs{KernelViews: views.wait, ProcCtx: h.procContext}, deadline)
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
