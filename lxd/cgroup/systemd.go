package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/godbus/dbus/v5"
)

// systemdGroup is a container cgroup on a pure cgroup2 host whose init is
// systemd: a transient scope unit berth-<name>.scope in berth.slice with
// Delegate=yes, so systemd knows the subtree is not its own, enables the
// controllers along the path, and does not fight us over it.
//
// Create is a no-op because systemd creates a scope only together with its
// first process: AddProc(pid) starts the unit with PIDs=[pid] and waits for
// the job. That fits the monitor's order (Create, SetLimits, clone init,
// AddProc, then init unshares its cgroup namespace), so limits set before
// AddProc go into StartTransientUnit, and later ones through
// SetUnitProperties: systemd owns the scope's control files and would
// rewrite anything written behind its back on its next reload.
//
// Freeze, Thaw, Stats, Procs and Delegate work on the scope's directory
// like v2Group: none of them needs systemd, and the delegated subtree's
// files are ours to use.
//
// Verified here against a fake systemd on a private dbus-daemon (see
// systemd_test.go): method names, exact D-Bus signatures, property names
// and types, job waiting, the retry after a lost connection, and the
// fallback. Only a real systemd host can verify that systemd accepts these
// properties as sent (version 244+ for AllowedCPUs), realizes berth.slice
// with controllers enabled, and moves the pid before the job completes.
type systemdGroup struct {
	*v2Group
	bus    string // D-Bus address of systemd
	unit   string
	limits Limits
	// started: this Group started the unit, so SetLimits must go through
	// systemd even if the directory is not visible (yet).
	started bool
}

func newSystemdGroup(name string, l Layout) (*systemdGroup, error) {
	unit := UnitName(l.Parent, name)
	if len(unit) > unitNameMax {
		return nil, fmt.Errorf("%w: %q makes a unit name longer than %d", ErrBadName, name, unitNameMax)
	}

	slice := l.Unified + "/" + Slice

	return &systemdGroup{
		v2Group: &v2Group{name: name, dir: slice + "/" + unit, parent: slice, root: l.Unified},
		bus:     l.SystemdBus,
		unit:    unit,
	}, nil
}

// Create does nothing: see AddProc.
func (g *systemdGroup) Create() error { return nil }

// AddProc starts the scope with pid as its first process. A scope cannot
// be started twice, so a second AddProc (a second process) is written to
// cgroup.procs directly, which a delegated scope allows.
func (g *systemdGroup) AddProc(pid int) error {
	if g.started {
		return g.v2Group.AddProc(pid)
	}

	props, err := startProps(g.name, pid, g.limits)
	if err != nil {
		return err
	}

	// A unit of the same name may linger: failed, or stopped but not yet
	// garbage-collected. Reset it and try again for up to a second.
	for attempt := 0; ; attempt++ {
		err = g.start(props)
		if err == nil || !isDBusError(err, errUnitExists) {
			break
		}

		if g.hasProc(pid) {
			// An earlier attempt that lost its connection did start it.
			err = nil
			break
		}

		if attempt == 20 {
			break
		}

		_ = g.resetFailed()

		time.Sleep(50 * time.Millisecond)
	}

	if err != nil {
		return fmt.Errorf("starting unit %s for process %d: %w", g.unit, pid, err)
	}

	g.started = true

	if !g.hasProc(pid) {
		return fmt.Errorf("systemd started %s but process %d is not in %s", g.unit, pid, g.dir)
	}

	return nil
}

func (g *systemdGroup) start(props []property) error {
	return withBus(g.bus, func(c *dbus.Conn) error {
		result, err := runJob(c, "StartTransientUnit", g.unit, "fail", props, []auxUnit{})
		if err != nil {
			return err
		}

		if result != "done" {
			_ = g.resetFailed()
			return fmt.Errorf("start job of %s ended %q", g.unit, result)
		}

		return nil
	})
}

func (g *systemdGroup) hasProc(pid int) bool {
	pids, err := procsIn(g.dir)
	return err == nil && slices.Contains(pids, pid)
}

// SetLimits keeps the limits for the start of the scope, or, once it
// runs, hands them to systemd.
func (g *systemdGroup) SetLimits(l Limits) error {
	props, err := limitProps(l)
	if err != nil {
		return err
	}

	g.limits = l

	if !g.started {
		_, err = os.Stat(g.dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}

	err = withBus(g.bus, func(c *dbus.Conn) error {
		return call(c, "SetUnitProperties", nil, g.unit, true, props)
	})
	if err != nil {
		return fmt.Errorf("setting limits of %s: %w", g.unit, err)
	}

	return nil
}

// Remove kills what is left in the scope at once (a stop would send
// SIGTERM and wait up to 90 s), then stops the unit so its name is free
// again. A unit systemd does not know is already removed.
func (g *systemdGroup) Remove() error {
	g.started = false

	err := killV2(g.dir)
	if err != nil {
		return err
	}

	err = withBus(g.bus, func(c *dbus.Conn) error {
		result, err := runJob(c, "StopUnit", g.unit, "replace")
		if err != nil {
			return err
		}

		if result != "done" && result != "canceled" {
			return fmt.Errorf("stop job of %s ended %q", g.unit, result)
		}

		return nil
	})
	if err != nil && !isDBusError(err, errNoSuchUnit) && !isDBusError(err, errLoadFailed) {
		return fmt.Errorf("stopping unit %s: %w", g.unit, err)
	}

	err = g.resetFailed()
	if err != nil {
		return err
	}

	// systemd removes a stopped scope's directory (and what the
	// container's systemd made below it) itself; this only catches up if
	// it has not yet, and never touches a unit that still exists.
	return removeTree(g.dir)
}

func (g *systemdGroup) resetFailed() error {
	err := withBus(g.bus, func(c *dbus.Conn) error {
		return call(c, "ResetFailedUnit", nil, g.unit)
	})
	if err != nil && !isDBusError(err, errNoSuchUnit) && !isDBusError(err, errLoadFailed) {
		return fmt.Errorf("resetting unit %s: %w", g.unit, err)
	}

	return nil
}
