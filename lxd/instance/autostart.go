package instance

import (
	"cmp"
	"context"
	"errors"
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
// then by name, each followed by its boot.autostart.delay. Instances that fail to start
// are reported together; the others still start.
func (ru *Runner) Autostart(ctx context.Context) error {
	list, err := ru.view.ListLocal(ctx, false)
	if err != nil {
		return err
	}

	var errs []error
	started := 0
	for _, inst := range autostartOrder(list) {
		key := project.Key(inst.Project, inst.Name)
		if ru.host.monitor(key) != nil {
			continue
		}

		ru.log.Info("autostarting instance", "instance", key)
		err := ru.autostartOne(ctx, key)
		if err != nil {
			errs = append(errs, err)
		} else {
			started++
		}

		err = sleepCtx(ctx, autostartDelay(inst.ExpandedConfig))
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
	}

	ru.log.Info("autostart done", "started", started, "failed", len(errs))
	return errors.Join(errs...)
}

// autostartOne starts key, trying again after a failure (unless something else started
// it meanwhile).
func (ru *Runner) autostartOne(ctx context.Context, key string) error {
	var err error
	for attempt := 1; attempt <= autostartAttempts; attempt++ {
		err = ru.Start(ctx, key)
		if err == nil || ru.host.monitor(key) != nil {
			return nil
		}

		ru.log.Warn("autostart failed", "instance", key, "attempt", attempt, "of", autostartAttempts, "err", err)
		if attempt < autostartAttempts && sleepCtx(ctx, autostartRetry) != nil {
			break
		}
	}

	return err
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

// autostartDelay is boot.autostart.delay, in seconds (validated when set).
func autostartDelay(config map[string]string) time.Duration {
	n, _ := strconv.ParseInt(config["boot.autostart.delay"], 10, 64)
	return time.Duration(max(n, 0)) * time.Second
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
