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

// openNS opens init's (pid's) namespace of kind ("net", "pid"), one the host side needs:
// the network namespace for the tree's sysfs, the pid namespace for its procfs. Init is
// our unreaped child, so pid is surely it.
func openNS(pid int, kind string) (*os.File, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	if err != nil {
		return nil, fmt.Errorf("opening init's %s namespace: %w", kind, err)
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
			netns, err = openNS(mk.init.Pid, "net")
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

	netns, err := openNS(mk.init.Pid, "net")
	if err != nil {
		mk.discard()
		return nil, nil, err
	}

	return mk, netns, nil
}

// hostSide is the host side of a start (buildMountNS), running while init becomes the
// container's root and clones the staged mounts.
type hostSide struct {
	procc     chan int // init's procfs context, for a host side that cannot make its own
	procGiven bool

	makeProc func(pidns int) (int, error) // setup.ProcContextFor; tests replace it
	own      int                          // the procfs context made here, or -1
	pidns    *os.File                     // init's pid namespace, closed when done

	done chan hostResult
	once sync.Once
	res  hostResult
}

// hostResult is what buildMountNS gives back.
type hostResult struct {
	mntns *os.File
	err   error
}

func newHostSide(pidns *os.File) *hostSide {
	return &hostSide{
		procc:    make(chan int, 1),
		makeProc: setup.ProcContextFor,
		own:      -1,
		pidns:    pidns,
		done:     make(chan hostResult, 1),
	}
}

// startHostSide starts building init's mount tree in init's network namespace (netns),
// with a procfs of its pid namespace (pidns, which it closes), and has cp copy it.
func startHostSide(cfg setup.Config, netns, pidns *os.File, cp *copier, views *viewClones, deadline time.Time) *hostSide {
	h := newHostSide(pidns)

	go func() {
		mntns, err := buildMountNS(cfg, cp, netns, setup.HostInputs{KernelViews: views.wait, ProcCtx: h.procContext}, deadline)
		if h.own >= 0 {
			_ = unix.Close(h.own)
		}

		_ = h.pidns.Close()
		h.done <- hostResult{mntns, err}
	}()

	return h
}

// procContext is the host side's HostInputs.ProcCtx: a procfs context for init's pid
// namespace made here where the kernel can (then the tree does not wait for init); else
// the one init makes once it has its config.
func (h *hostSide) procContext() (int, error) {
	fd, err := h.makeProc(int(h.pidns.Fd()))
	if err == nil {
		h.own = fd
		return fd, nil
	}

	fd, ok := <-h.procc
	if !ok {
		return -1, errors.New("init gave no procfs context")
	}

	return fd, nil
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

// finish ends the host side, telling it that no procfs context will come if it still
// waits for one, and closes what it made.
func (h *hostSide) finish() {
	if !h.procGiven {
		close(h.procc)
		h.procGiven = true
	}

	if res := h.result(); res.mntns != nil {
		_ = res.mntns.Close()
	}
}
