package instance

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// Autostart attempts and the pause between them, as LXD: a start that failed at the
// daemon's start (lxcfs or the network not ready yet) is tried twice more.
const (
	autostartAttempts = 3
	autostartRetry    = 5 * time.Second
)

// Autostart starts, at daemon start and once Reconcile has found what still runs, every
// stopped instance of this member that LXD would start: boot.autostart set true, or left
// unset on an instance that was running when it went down (volatile.last_state.power
// still RUNNING: Reconcile keeps it so for an instance that did not stop itself, as after
// a host restart). They start one at a time, the highest boot.autostart.priority first,
// then by name, each started one followed by its boot.autostart.delay. The pass may take
// long (delays, retries) while the API already serves: each instance is looked at again
// under its lock just before its start (still here, still to start, not running), and
// the pass ends once paused says so (this member is being evacuated). Instances that fail
// to start are reported together; the others still start.
func (ru *Runner) Autostart(ctx context.Context, paused func(context.Context) bool) error {
	list, err := ru.view.ListLocal(ctx, false)
	if err != nil {
		return err
	}

	var errs []error
	started := 0
	for _, inst := range autostartOrder(list) {
		key := project.Key(inst.Project, inst.Name)
		if ru.host.monitor(key) != nil {
			// Running (adopted by this start): nothing to start. Without this, each of
			// hundreds of running instances took its lock and two database reads (~1.6 ms)
			// just after the daemon came up, beside its first requests.
			continue
		}

		delay, err := ru.autostartOne(ctx, key, paused)
		if errors.Is(err, errAutostartPaused) {
			ru.log.Info("autostart paused: this member is evacuated")
			break
		}

		if err != nil {
			errs = append(errs, err)
			continue
		}

		if delay < 0 {
			continue // not started: nothing to wait for
		}

		started++
		err = sleepCtx(ctx, delay)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
	}

	ru.log.Info("autostart done", "started", started, "failed", len(errs))
	return errors.Join(errs...)
}

// errAutostartPaused ends an autostart pass: this member is being evacuated.
var errAutostartPaused = errors.New("autostart paused")

// autostartOne starts key if it is still to start, trying again after a failure. It
// returns the instance's boot.autostart.delay once started, -1 if it was left alone.
func (ru *Runner) autostartOne(ctx context.Context, key string, paused func(context.Context) bool) (time.Duration, error) {
	var err error
	for attempt := 1; attempt <= autostartAttempts; attempt++ {
		var delay time.Duration
		delay, err = ru.autostartStart(ctx, key, paused)
		if err == nil || errors.Is(err, errAutostartPaused) {
			return delay, err
		}

		ru.log.Warn("autostart failed", "instance", key, "attempt", attempt, "of", autostartAttempts, "err", err)
		if attempt < autostartAttempts && sleepCtx(ctx, autostartRetry) != nil {
			break
		}
	}

	return -1, err
}

// autostartStart starts key, under its lock, if it is not running and, read now, is
// still this member's and still asks for it: it may have been stopped, reconfigured,
// moved or deleted since the pass listed it. It returns the instance's
// boot.autostart.delay once started, -1 if it was left alone.
func (ru *Runner) autostartStart(ctx context.Context, key string, paused func(context.Context) bool) (time.Duration, error) {
	ru.autostartMu.Lock()
	defer ru.autostartMu.Unlock()

	unlock := ru.host.lock(key)
	defer unlock()

	if paused(ctx) {
		return -1, errAutostartPaused
	}

	if ru.host.monitor(key) != nil {
		return -1, nil
	}

	l, err := ru.host.loadExpanded(ctx, key)
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		return -1, nil // deleted or renamed meanwhile
	}

	if err != nil {
		return -1, err
	}

	if !wantsAutostart(l.config) || l.inst.MemberID != ru.member {
		return -1, nil
	}

	ru.log.Info("autostarting instance", "instance", key)
	err = ru.start(ctx, key)
	if err != nil {
		return -1, err
	}

	return autostartDelay(l.config), nil
}

// AutostartBarrier returns once no autostart start is under way. An evacuation calls it
// after recording the member evacuated: a start that began before has ended (and the
// evacuation sees the instance running), one that begins later sees the evacuation and
// does not start.
func (ru *Runner) AutostartBarrier() {
	ru.autostartMu.Lock()
	defer ru.autostartMu.Unlock()
}

// autostartOrder is the instances of list to autostart, in the order to start them.
func autostartOrder(list []api.InstanceFull) []api.InstanceFull {
	out := []api.InstanceFull{}
	for _, inst := range list {
		if wantsAutostart(inst.ExpandedConfig) {
			out = append(out, inst)
		}
	}

	slices.SortStableFunc(out, func(a, b api.InstanceFull) int {
		pa, pb := autostartPriority(a.ExpandedConfig), autostartPriority(b.ExpandedConfig)
		if pa != pb {
			return cmp.Compare(pb, pa) // highest first
		}

		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Project, b.Project))
	})

	return out
}

// wantsAutostart is LXD's rule: boot.autostart true, or unset and the last state running.
func wantsAutostart(config map[string]string) bool {
	v, set := config["boot.autostart"]
	if set && v != "" {
		return validate.IsTrue(v)
	}

	return config["volatile.last_state.power"] == "RUNNING"
}

// autostartPriority is boot.autostart.priority, 0 when unset (validated when set).
func autostartPriority(config map[string]string) int64 {
	n, _ := strconv.ParseInt(config["boot.autostart.priority"], 10, 64)
	return n
}

// autostartDelay is boot.autostart.delay, in seconds (0 when unset).
func autostartDelay(config map[string]string) time.Duration {
	d, _ := SecondsConfig(config, "boot.autostart.delay")
	return d
}

// sleepCtx waits d, or until ctx ends (its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}

	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
