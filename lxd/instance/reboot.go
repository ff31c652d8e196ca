package instance

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/container"
)

// followReboots re-attaches an instance's NICs and devices after a reboot inside: the
// monitor starts a new init in new namespaces; the old veth pairs died with the old
// network namespace, and proxies (which end with the init they serve) and device nodes
// with the rest. It runs until the container stops.
func (ru *Runner) followReboots(name string, mon *container.Monitor) {
	pid := mon.InitPID()
	for {
		waitExit(pid)

		next := ru.waitNewInit(mon, pid)
		if next == 0 {
			return // stopped
		}

		pid = next
		err := ru.reattach(name, mon, pid)
		if err != nil {
			ru.log.Warn("re-attaching NICs and devices after a reboot", "instance", name, "err", err)
		}
	}
}

// waitNewInit returns the pid of the init that replaces old, or 0 once the container stops.
func (ru *Runner) waitNewInit(mon *container.Monitor, old int) int {
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
func (ru *Runner) reattach(name string, mon *container.Monitor, pid int) error {
	unlock := ru.host.lock(name)
	defer unlock()
	if ru.host.monitor(name) != mon {
		return nil // stopped meanwhile
	}

	ctx := context.Background()
	l, err := ru.host.loadExpanded(ctx, name)
	if err != nil {
		return err
	}

	return ru.devices.Reattach(ctx, ru.host.deviceInstance(l.inst, l.ids, ""), pid, l.devices)
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

// followOnce starts followReboots for a monitor unless it runs already.
func (ru *Runner) followOnce(name string, mon *container.Monitor) {
	ru.nicMu.Lock()
	defer ru.nicMu.Unlock()
	if ru.following == nil {
		ru.following = map[*container.Monitor]bool{}
	}

	if ru.following[mon] {
		return
	}

	ru.following[mon] = true
	go func() {
		ru.followReboots(name, mon)
		ru.nicMu.Lock()
		delete(ru.following, mon)
		ru.nicMu.Unlock()
	}()
}

// Resume takes up an instance found running at daemon start (Reconcile): its NICs' port
// filters are written again, so that the rules of this berthd reach containers that an
// older one started, and its NICs and devices are re-attached across reboots inside it.
func (ru *Runner) Resume(name string) {
	mon := ru.host.monitor(name)
	if mon == nil {
		return
	}

	// In the background, one instance after the other: a few netlink and database round
	// trips per instance need not hold up the daemon's start, and hundreds of them at once
	// would each hold their instance's lock while queueing for the bridge's. Until then
	// the older rules stay in force.
	ru.resumeMu.Lock()
	ru.resumeQueue = append(ru.resumeQueue, resumeItem{name: name, mon: mon})
	start := !ru.resuming
	ru.resuming = true
	ru.resumeMu.Unlock()
	if start {
		go ru.refreshQueued()
	}

	ru.followOnce(name, mon)
}

// resumeItem is an instance whose port filters Resume refreshes.
type resumeItem struct {
	name string
	mon  *container.Monitor
}

// refreshQueued refreshes the port filters of the instances Resume queued until there
// are none left.
func (ru *Runner) refreshQueued() {
	for {
		ru.resumeMu.Lock()
		if len(ru.resumeQueue) == 0 {
			ru.resuming = false
			ru.resumeQueue = nil
			ru.resumeMu.Unlock()
			return
		}

		it := ru.resumeQueue[0]
		ru.resumeQueue = ru.resumeQueue[1:]
		ru.resumeMu.Unlock()

		err := ru.refreshPortFilters(it.name, it.mon)
		if err != nil {
			ru.log.Warn("refreshing port filters", "instance", it.name, "err", err)
		}
	}
}

// refreshPortFilters replaces the filters of a running instance's ports with the MACs and
// addresses its NICs hold (device.Host.RefreshPorts), under the instance lock.
func (ru *Runner) refreshPortFilters(name string, mon *container.Monitor) error {
	unlock := ru.host.lock(name)
	defer unlock()
	if ru.host.monitor(name) != mon || ru.networks == nil {
		return nil
	}

	ctx := context.Background()
	l, err := ru.host.loadExpanded(ctx, name)
	if err != nil {
		return err
	}

	return ru.devices.RefreshPorts(ctx, ru.host.deviceInstance(l.inst, l.ids, ""), l.devices)
}
