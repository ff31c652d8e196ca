package instance

import (
	"context"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/container"
)

// followReboots re-attaches an instance's NICs and devices after a reboot inside: the
// monitor starts a new init in new namespaces; the old veth pairs died with the old
// network namespace, and proxies (which end with the init they serve) and device nodes
// with the rest. It runs until the container stops.
func (m *Manager) followReboots(name string, mon *container.Monitor) {
	pid := mon.InitPID()
	for {
		waitExit(pid)

		next := m.waitNewInit(mon, pid)
		if next == 0 {
			return // stopped
		}

		pid = next
		err := m.reattach(name, mon, pid)
		if err != nil {
			m.log.Warn("re-attaching NICs and devices after a reboot", "instance", name, "err", err)
		}
	}
}

// waitNewInit returns the pid of the init that replaces old, or 0 once the container stops.
func (m *Manager) waitNewInit(mon *container.Monitor, old int) int {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-mon.Done():
			return 0
		case <-time.After(10 * time.Millisecond):
		}

		// InitPID falls back to a stale pid when the monitor cannot answer: only a live
		// process counts.
		if p := mon.InitPID(); p != old && p > 0 && unix.Kill(p, 0) == nil {
			return p
		}
	}

	return 0
}

// reattach drops the filters of the dead ports and attaches the NICs again, with the
// same MACs and reservations, then runs the devices' started steps for the new init.
// Under the instance lock, like a start.
func (m *Manager) reattach(name string, mon *container.Monitor, pid int) error {
	unlock := m.lock(name)
	defer unlock()
	if m.monitor(name) != mon {
		return nil // stopped meanwhile
	}

	ctx := context.Background()
	l, err := m.loadExpanded(ctx, name)
	if err != nil {
		return err
	}

	inst, ids, devices := l.inst, l.ids, l.devices

	if m.cfg.Networks != nil {
		for k, host := range inst.Config {
			if strings.HasPrefix(k, "volatile.") && strings.HasSuffix(k, ".host_name") {
				_ = m.dropHostEnd(host)
			}
		}

		nics, err := m.nicsPrepare(ctx, inst, devices, "", ids)
		if err != nil {
			return err
		}

		err = m.nicsAttach(ctx, name, mon, nics)
		if err != nil {
			return err
		}
	}

	m.startedDevices(name, ids, pid, devices)

	return nil
}

// waitExit returns once process pid has exited, waiting on a pidfd through the runtime's
// poller: one per running container, so no OS thread may be parked on it. A pid already
// gone fails to open, which means the same.
func waitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}

	f := os.NewFile(uintptr(fd), "pidfd")
	defer func() { _ = f.Close() }()

	rc, err := f.SyscallConn()
	if err != nil {
		return
	}

	// A pidfd turns readable when the process exits; Read waits for that in the poller
	// each time the callback says "not yet".
	_ = rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)

		return err != nil || n > 0
	})
}
