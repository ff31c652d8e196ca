package cgroup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/sys"
	"github.com/godbus/dbus/v5"
)

// hostEnv is what Detect looks at. Tests point it at a fake root, a fake
// layout and a private bus.
type hostEnv struct {
	root   string                                 // "/" on the host
	layout func() (sys.CgroupMode, string, error) // sys.CgroupLayout on the host
	bus    string                                 // the system bus address
	probe  time.Duration                          // how long the bus may take to answer
}

func realHost() hostEnv {
	return hostEnv{root: "/", layout: sys.CgroupLayout, bus: systemBusAddress(), probe: 3 * time.Second}
}

// systemdBooted is sd_booted() plus a look at PID 1: inside some
// containers /run/systemd/system is bind-mounted from a host whose systemd
// is not ours to talk to.
func systemdBooted(root string) bool {
	st, err := os.Stat(filepath.Join(root, "run/systemd/system"))
	if err != nil || !st.IsDir() {
		return false
	}

	comm, err := os.ReadFile(filepath.Join(root, "proc/1/comm"))

	return err == nil && strings.TrimSpace(string(comm)) == "systemd"
}

// detectSystemd decides whether groups on a pure cgroup2 host go through
// systemd: it must be init and answer on the bus. If systemd is init but
// does not answer, l.Warning says so and the tree is written directly.
func detectSystemd(env hostEnv, l *Layout) {
	if l.Mode != sys.CgroupUnified || !systemdBooted(env.root) {
		return
	}

	err := probeBus(env.bus, env.probe)
	if err != nil {
		l.Warning = fmt.Sprintf("systemd is init but unreachable over D-Bus (%v): managing %s directly", err, l.Unified)
		return
	}

	l.SystemdBus = env.bus
}

// probeBus connects (the connection is kept for the groups) and pings
// systemd's manager object, within timeout: auth on a wedged bus would
// otherwise block start-up forever.
func probeBus(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	done := make(chan error, 1)

	go func() {
		done <- withBus(addr, func(c *dbus.Conn) error {
			return c.Object(systemdDest, managerPath).CallWithContext(ctx, "org.freedesktop.DBus.Peer.Ping", dbus.FlagNoAutoStart).Err
		})
	}()

	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer from %s within %s", addr, timeout)
	}
}
