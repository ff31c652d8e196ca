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
func (ru *Runner) Stop(ctx context.Context, name string, timeout time.Duration, force bool) error {
	unlock := ru.host.lock(name)
	defer unlock()

	return ru.stop(ctx, name, timeout, force)
}

// Preconditions: the instance lock is held.
func (ru *Runner) stop(ctx context.Context, name string, timeout time.Duration, force bool) error {
	mon := ru.host.monitor(name)
	if mon == nil {
		_, err := ru.host.exists(ctx, name)
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

	ru.stopped(name, mon, exit)
	return nil
}

// Restart stops (cleanly unless force) and starts again.
func (ru *Runner) Restart(ctx context.Context, name string, timeout time.Duration, force bool) error {
	unlock := ru.host.lock(name)
	defer unlock()

	err := ru.stop(ctx, name, timeout, force)
	if err != nil {
		return err
	}

	err = ru.start(ctx, name)
	if err != nil {
		return err
	}

	ru.host.event("instance-restarted", name, nil)
	return nil
}

// Freeze pauses every process of a running instance.
func (ru *Runner) Freeze(ctx context.Context, name string) error {
	unlock := ru.host.lock(name)
	defer unlock()

	mon := ru.host.monitor(name)
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

	ru.host.event("instance-paused", name, nil)
	return nil
}

// Unfreeze resumes a frozen instance.
func (ru *Runner) Unfreeze(ctx context.Context, name string) error {
	unlock := ru.host.lock(name)
	defer unlock()

	mon := ru.host.monitor(name)
	if mon == nil || !mon.Frozen() {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is not frozen")
	}

	err := mon.Thaw()
	if err != nil {
		return err
	}

	ru.host.event("instance-resumed", name, nil)
	return nil
}

// watch has the stops that the daemon did not ask for (poweroff inside, a crash of init)
// recorded once the monitor says so. It returns at once: the monitor handle's own
// goroutine runs the record, so no goroutine per container waits for it.
func (ru *Runner) watch(name string, mon *container.Monitor) {
	mon.AfterDone(func() {
		unlock := ru.host.lock(name)
		defer unlock()

		if ru.host.monitor(name) != mon {
			return // stop() already recorded it
		}

		exit, _ := container.LastExit(ru.host.runDir(name))
		ru.stopped(name, mon, exit)
	})
}

// stopped forgets a monitor whose container has ended, records it, and deletes ephemeral
// instances. Preconditions: the instance lock is held.
func (ru *Runner) stopped(name string, mon *container.Monitor, exit *container.Exit) {
	ru.host.dropMonitor(name, mon)
	_ = mon.Close()
	ru.devices.Stopped(name, ru.host.instanceDir(name))

	ctx := context.Background()
	var ephemeral bool
	err := ru.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		inst, err := tx.GetInstance(ctx, name)
		if err != nil {
			return err
		}

		ephemeral = inst.Ephemeral
		if exit.HostShutdown() {
			// Its monitor stopped it on SIGTERM: the host is shutting down. It stays
			// meant to run, and the daemon's next start brings it back (Autostart).
			return nil
		}

		return tx.UpdateInstanceConfig(ctx, name, map[string]string{"volatile.last_state.power": "STOPPED"}, nil)
	})
	if err != nil {
		ru.log.Warn("recording stop", "instance", name, "err", err)
	}

	details := map[string]any{}
	if exit != nil {
		details["code"] = exit.Code
		details["signal"] = exit.Signal
		details["killed"] = exit.Killed
	}

	ru.host.event("instance-stopped", name, details)
	if ephemeral {
		err := ru.host.delete(ctx, name)
		if err != nil {
			ru.log.Warn("deleting ephemeral instance", "instance", name, "err", err)
		}
	}
}
