package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	systemdDest  = "org.freedesktop.systemd1"
	managerPath  = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIface = "org.freedesktop.systemd1.Manager"

	errNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit"
	errLoadFailed = "org.freedesktop.systemd1.LoadFailed"
	errUnitExists = "org.freedesktop.systemd1.UnitExists"
)

// callTimeout bounds one method call; jobTimeout a start or stop job (runc
// uses 30 s too: a busy systemd can take that long); reconnectTimeout how
// long a lost bus may take to come back.
var (
	callTimeout      = 10 * time.Second
	jobTimeout       = 30 * time.Second
	reconnectTimeout = 5 * time.Second
)

// systemBusAddress is where the host's system bus listens.
func systemBusAddress() string {
	a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	if a != "" {
		return a
	}

	return "unix:path=/run/dbus/system_bus_socket"
}

// busPool keeps one connection per bus address for the whole process: the
// monitor has one group, the daemon makes many short-lived ones, and a
// connection is set up once (auth, Hello, match rule, Subscribe).
type busPool struct {
	mu    sync.Mutex
	conns map[string]*dbus.Conn
}

var buses = &busPool{conns: map[string]*dbus.Conn{}}

func (p *busPool) get(addr string) (*dbus.Conn, error) {
	p.mu.Lock()
	c := p.conns[addr]
	p.mu.Unlock()

	if c != nil && c.Connected() {
		return c, nil
	}

	// Dial unlocked: a wedged bus must not hold up the others.
	c, err := dialSystemd(addr)
	if err != nil {
		return nil, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	cur := p.conns[addr]
	if cur != nil && cur.Connected() {
		_ = c.Close()
		return cur, nil
	}

	p.conns[addr] = c

	return c, nil
}

// drop forgets c (if still current) and closes it.
func (p *busPool) drop(addr string, c *dbus.Conn) {
	p.mu.Lock()
	if p.conns[addr] == c {
		delete(p.conns, addr)
	}
	p.mu.Unlock()

	_ = c.Close()
}

// dialSystemd connects and asks for JobRemoved: the match rule routes the
// signal to us, and Subscribe makes systemd emit it at all.
func dialSystemd(addr string) (*dbus.Conn, error) {
	// godbus closes a connection when its context ends, which also breaks
	// a hung authentication; the timer is stopped once connected.
	connCtx, cancelConn := context.WithCancel(context.Background())
	timer := time.AfterFunc(callTimeout, cancelConn)

	c, err := dbus.Connect(addr, dbus.WithContext(connCtx))
	if !timer.Stop() {
		if err == nil {
			_ = c.Close()
		}

		return nil, fmt.Errorf("connecting to %s: no answer within %s", addr, callTimeout)
	}

	if err != nil {
		cancelConn()
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}

	err = c.AddMatchSignal(
		dbus.WithMatchSender(systemdDest),
		dbus.WithMatchObjectPath(managerPath),
		dbus.WithMatchInterface(managerIface),
		dbus.WithMatchMember("JobRemoved"))
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("adding a JobRemoved match on %s: %w", addr, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()

	err = c.Object(systemdDest, managerPath).CallWithContext(ctx, managerIface+".Subscribe", dbus.FlagNoAutoStart).Err
	if err != nil && !isDBusError(err, "org.freedesktop.systemd1.AlreadySubscribed") {
		_ = c.Close()
		return nil, fmt.Errorf("subscribing to systemd on %s: %w", addr, err)
	}

	return c, nil
}

// withBus runs op on the pooled connection, once more on a fresh one if
// the first was lost (dbus-daemon or systemd restarted): runc's pattern.
// A restarting bus takes a moment to listen and systemd to take its name
// again, so the new connection is awaited for up to reconnectTimeout.
// op must be safe to repeat.
func withBus(addr string, op func(*dbus.Conn) error) error {
	c, err := buses.get(addr)
	if err != nil {
		return err
	}

	err = op(c)
	if err == nil || !disconnected(err, c) {
		return err
	}

	buses.drop(addr, c)

	deadline := time.Now().Add(reconnectTimeout)

	for {
		c, err = buses.get(addr)
		if err == nil {
			break
		}

		if time.Now().After(deadline) {
			return fmt.Errorf("reconnecting after a lost connection: %w", err)
		}

		time.Sleep(50 * time.Millisecond)
	}

	return op(c)
}

// disconnected says whether err came from a connection that is gone: a
// call on a closed connection fails with ErrClosed, one in flight when the
// peer hung up with the read error (godbus closes the connection first).
func disconnected(err error, c *dbus.Conn) bool {
	return errors.Is(err, dbus.ErrClosed) || !c.Connected()
}

func isDBusError(err error, name string) bool {
	var e dbus.Error

	ok := errors.As(err, &e)
	if ok {
		return e.Name == name
	}

	var pe *dbus.Error

	return errors.As(err, &pe) && pe.Name == name
}

// call invokes a Manager method and stores its results. Never with
// auto-start: systemd's bus activation file runs /bin/false.
func call(c *dbus.Conn, method string, out []any, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()

	err := c.Object(systemdDest, managerPath).CallWithContext(ctx, managerIface+"."+method, dbus.FlagNoAutoStart, args...).Store(out...)
	if err != nil {
		return fmt.Errorf("calling %s: %w", method, err)
	}

	return nil
}

// runJob calls a Manager method that queues a job (StartTransientUnit,
// StopUnit) and waits for its JobRemoved, returning the job's result
// ("done" on success). It listens before calling: systemd may finish the
// job before we have read the reply.
func runJob(c *dbus.Conn, method string, args ...any) (string, error) {
	ch := make(chan *dbus.Signal, 16)
	c.Signal(ch)

	defer c.RemoveSignal(ch)

	var job dbus.ObjectPath

	err := call(c, method, []any{&job}, args...)
	if err != nil {
		return "", err
	}

	timeout := time.NewTimer(jobTimeout)
	defer timeout.Stop()

	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return "", fmt.Errorf("waiting for job %s: %w", job, dbus.ErrClosed)
			}

			if s.Name != managerIface+".JobRemoved" || len(s.Body) != 4 {
				continue
			}

			path, _ := s.Body[1].(dbus.ObjectPath)
			result, _ := s.Body[3].(string)

			if path == job {
				return result, nil
			}
		case <-timeout.C:
			return "", fmt.Errorf("job %s of %s did not finish within %s", job, method, jobTimeout)
		}
	}
}
