package instance

import (
	"context"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// DefaultStopTimeout is how long a clean shutdown may take before the instance is killed.
const DefaultStopTimeout = 30 * time.Second

// Stop shuts an instance down: SIGRTMIN+3 to its systemd, then SIGKILL after timeout.
// timeout < 0 means the default; force or timeout == 0 kills at once (LXD semantics).
func (m *Manager) Stop(ctx context.Context, name string, timeout time.Duration, force bool) error {
	unlock := m.lock(name)
	defer unlock()

	return m.stop(ctx, name, timeout, force)
}

// Preconditions: the instance lock is held.
func (m *Manager) stop(ctx context.Context, name string, timeout time.Duration, force bool) error {
	mon := m.monitor(name)
	if mon == nil {
		_, err := m.exists(ctx, name)
		if err != nil {
			return err
		}

		return api.StatusErrorf(http.StatusBadRequest, "the instance is already stopped")
	}

	if timeout < 0 {
		timeout = DefaultStopTimeout
	}

	if timeout == 0 {
		force = true
	}

	if mon.Frozen() {
		_ = mon.Thaw()
	}

	exit, err := mon.Stop(ctx, timeout, force)
	if err != nil {
		return err
	}

	m.stopped(name, mon, exit)
	return nil
}

// Restart stops (cleanly unless force) and starts again.
func (m *Manager) Restart(ctx context.Context, name string, timeout time.Duration, force bool) error {
	unlock := m.lock(name)
	defer unlock()

	err := m.stop(ctx, name, timeout, force)
	if err != nil {
		return err
	}

	err = m.start(ctx, name)
	if err != nil {
		return err
	}

	m.event("instance-restarted", name, nil)
	return nil
}

// Freeze pauses every process of a running instance.
func (m *Manager) Freeze(ctx context.Context, name string) error {
	unlock := m.lock(name)
	defer unlock()

	mon := m.monitor(name)
	if mon == nil {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is not running")
	}

	if mon.Frozen() {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is already frozen")
	}

	err := mon.Freeze()
	if err != nil {
		return err
	}

	m.event("instance-paused", name, nil)
	return nil
}

// Unfreeze resumes a frozen instance.
func (m *Manager) Unfreeze(ctx context.Context, name string) error {
	unlock := m.lock(name)
	defer unlock()

	mon := m.monitor(name)
	if mon == nil || !mon.Frozen() {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is not frozen")
	}

	err := mon.Thaw()
	if err != nil {
		return err
	}

	m.event("instance-resumed", name, nil)
	return nil
}

// watch records a stop that the daemon did not ask for (poweroff inside, a crash of init).
func (m *Manager) watch(name string, mon *container.Monitor) {
	<-mon.Done()

	unlock := m.lock(name)
	defer unlock()

	if m.monitor(name) != mon {
		return // stop() already recorded it
	}

	exit, _ := container.LastExit(m.runDir(name))
	m.stopped(name, mon, exit)
}

// stopped forgets a monitor whose container has ended, records it, and deletes ephemeral
// instances. Preconditions: the instance lock is held.
func (m *Manager) stopped(name string, mon *container.Monitor, exit *container.Exit) {
	m.mu.Lock()
	if m.monitors[name] == mon {
		delete(m.monitors, name)
	}

	m.mu.Unlock()
	_ = mon.Close()
	m.devices.Stopped(name, m.instanceDir(name))

	ctx := context.Background()
	var ephemeral bool
	err := m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		inst, err := tx.GetInstance(ctx, name)
		if err != nil {
			return err
		}

		ephemeral = inst.Ephemeral
		return tx.UpdateInstanceConfig(ctx, name, map[string]string{"volatile.last_state.power": "STOPPED"}, nil)
	})
	if err != nil {
		m.log.Warn("recording stop", "instance", name, "err", err)
	}

	details := map[string]any{}
	if exit != nil {
		details["code"] = exit.Code
		details["signal"] = exit.Signal
		details["killed"] = exit.Killed
	}

	m.event("instance-stopped", name, details)
	if ephemeral {
		err := m.delete(ctx, name)
		if err != nil {
			m.log.Warn("deleting ephemeral instance", "instance", name, "err", err)
		}
	}
}

func (m *Manager) exists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		ok, err = tx.InstanceExists(ctx, name)
		return err
	})
	if err == nil && !ok {
		return false, api.StatusErrorf(http.StatusNotFound, "instance %q not found", name)
	}

	return ok, err
}
