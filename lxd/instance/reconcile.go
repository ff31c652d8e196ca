package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
)

// Reconcile runs once at daemon start. It finds the monitors of this member's running
// instances again, cleans up after those whose monitor is gone (mounts, cgroups), and
// removes what a crash left half-made: storage and files of instances that never got a
// DB row. In a cluster the rows of other members' instances are not touched, and a
// directory named by any member's row is not an orphan.
func (ru *Runner) Reconcile(ctx context.Context) error {
	var rows []db.Instance
	profiles := map[string]*db.Profile{}
	known := map[string]bool{}
	owners := map[string]int64{} // every row's member: settleMemberMoves
	err := ru.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetInstancesWhere(ctx, db.InstanceFilter{MemberID: ru.member})
		if err != nil {
			return err
		}

		all, err := tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		for _, inst := range all {
			known[inst.Name] = true
			owners[inst.Name] = inst.MemberID
		}

		ps, err := tx.GetProfiles(ctx)
		for i := range ps {
			profiles[ps[i].Name] = &ps[i]
		}

		return err
	})
	if err != nil {
		return err
	}

	mons, errs := ru.attachAll(rows)
	for i := range rows {
		inst := &rows[i]

		mon, err := mons[i], errs[i]
		if err == nil {
			ru.host.setMonitor(inst.Name, mon)
			ru.watch(inst.Name, mon)
			ru.log.Info("found running instance", "instance", inst.Name, "pid", mon.InitPID())
			continue
		}

		if !errors.Is(err, container.ErrNotRunning) {
			ru.log.Warn("attaching to monitor", "instance", inst.Name, "err", err)
		}

		ru.cleanupStopped(inst, profiles)
		ru.settleMove(inst, profiles)
	}

	ru.settleMemberMoves(owners)
	ru.removeOrphans(known)
	return nil
}

// attachParallel bounds the monitors attached at once at daemon start. An attach is a
// round trip to a monitor process: one after the other, hundreds of them took most of a
// restart's time, waiting on the monitors rather than working.
const attachParallel = 32

// attachAll attaches to the monitor of each row, if it runs, several at a time; the
// results are in the rows' order.
func (ru *Runner) attachAll(rows []db.Instance) ([]*container.Monitor, []error) {
	mons := make([]*container.Monitor, len(rows))
	errs := make([]error, len(rows))
	sem := make(chan struct{}, attachParallel)
	var wg sync.WaitGroup
	for i := range rows {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			mons[i], errs[i] = container.Attach(ru.host.runDir(rows[i].Name))
		}()
	}

	wg.Wait()
	return mons, errs
}

// cleanupStopped removes what a monitor that died without cleaning up left behind.
func (ru *Runner) cleanupStopped(inst *db.Instance, profiles map[string]*db.Profile) {
	ids, err := ru.host.idsOf(inst)
	if err != nil {
		ru.log.Warn("reading id map", "instance", inst.Name, "err", err)
	}

	_, devices := Expand(inst, profiles)
	pool, err := ru.pools.of(devices)
	if err != nil {
		ru.log.Warn("finding the pool of a stopped instance", "instance", inst.Name, "err", err)
	}

	var unmounts []string
	if pool != nil {
		unmounts = pool.Mountpoints(inst.Name)
	}

	spec := container.Spec{Name: inst.Name, RunDir: ru.host.runDir(inst.Name), IDMap: ids, Unmounts: unmounts,
		CgroupParent: ru.cgroupParent}
	err = container.Cleanup(spec)
	if err != nil {
		ru.log.Warn("cleaning up stopped instance", "instance", inst.Name, "err", err)
	}

	if pool != nil {
		err = pool.UnmountInstance(inst.Name)
		if err != nil {
			ru.log.Warn("unmounting stopped instance", "instance", inst.Name, "err", err)
		}
	}

	if inst.Config["volatile.last_state.power"] != "RUNNING" {
		return
	}

	last, _ := container.LastExit(ru.host.runDir(inst.Name))
	if !stoppedItself(last) && !inst.Ephemeral {
		// The host went down under it, or its monitor was killed: it is still meant to
		// run, and Autostart starts it again unless boot.autostart says false (LXD's rule).
		ru.log.Info("instance went down without being stopped: its last state stays running", "instance", inst.Name)
		return
	}

	reason := "ephemeral"
	if last != nil {
		reason = last.Reason
	}

	ru.log.Info("instance stopped while the daemon was away", "instance", inst.Name, "reason", reason)
	_ = ru.db.Transaction(context.Background(), func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstanceConfig(ctx, inst.Name, map[string]string{"volatile.last_state.power": "STOPPED"}, nil)
	})
}

// stoppedItself says whether the monitor's exit record (nil: none) shows a container that
// was stopped on request or stopped itself: powered off or exited from inside. No record
// (the monitor died with it: a power loss), a stop the monitor made on its own SIGTERM
// (the host shutting down), a reboot the monitor did not finish, or a signal from
// elsewhere (the OOM killer) is a container that went down while meant to run. (An
// ephemeral instance is never brought back: it ends when it stops.)
func stoppedItself(last *container.Exit) bool {
	if last == nil || last.HostShutdown() {
		return false
	}

	if last.Requested { // the admin's stop, even if the host's shutdown crossed it
		return true
	}

	switch last.Reason {
	case "poweroff", "exit", "killed": // "killed": a stop's, in a record without Requested
		return true
	}

	return false
}

// removeOrphans deletes instance directories and storage that no DB row names: the
// remains of a create that crashed before writing its row, on whichever pool it was
// being made.
func (ru *Runner) removeOrphans(known map[string]bool) {
	entries, _ := os.ReadDir(filepath.Join(ru.dir, "instances"))
	pools := ru.pools.pools.Drivers()
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}

		ru.log.Info("removing half-created instance", "instance", e.Name())
		for _, pool := range pools {
			_ = pool.DeleteInstance(e.Name())
		}

		_ = os.RemoveAll(filepath.Join(ru.dir, "instances", e.Name()))
	}
}
