package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
)

// Reconcile runs once at daemon start. It finds the monitors of running instances again,
// cleans up after instances whose monitor is gone (mounts, cgroups), and removes what a
// crash left half-made: storage and files of instances that never got a DB row.
func (m *Manager) Reconcile(ctx context.Context) error {
	var rows []db.Instance
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetInstances(ctx)
		return err
	})
	if err != nil {
		return err
	}

	known := map[string]bool{}
	for i := range rows {
		inst := &rows[i]
		known[inst.Name] = true

		mon, err := container.Attach(m.runDir(inst.Name))
		if err == nil {
			m.mu.Lock()
			m.monitors[inst.Name] = mon
			m.mu.Unlock()
			go m.watch(inst.Name, mon)
			m.log.Info("found running instance", "instance", inst.Name, "pid", mon.InitPID())
			continue
		}

		if !errors.Is(err, container.ErrNotRunning) {
			m.log.Warn("attaching to monitor", "instance", inst.Name, "err", err)
		}

		m.cleanupStopped(inst)
	}

	m.removeOrphans(known)
	return nil
}

// cleanupStopped removes what a monitor that died without cleaning up left behind.
func (m *Manager) cleanupStopped(inst *db.Instance) {
	ids, err := m.idsOf(inst)
	if err != nil {
		m.log.Warn("reading id map", "instance", inst.Name, "err", err)
	}

	spec := container.Spec{Name: inst.Name, RunDir: m.runDir(inst.Name), IDMap: ids, Unmounts: m.cfg.Pool.Mountpoints(inst.Name),
		CgroupParent: m.cfg.CgroupParent}
	err = container.Cleanup(spec)
	if err != nil {
		m.log.Warn("cleaning up stopped instance", "instance", inst.Name, "err", err)
	}

	err = m.cfg.Pool.UnmountInstance(inst.Name)
	if err != nil {
		m.log.Warn("unmounting stopped instance", "instance", inst.Name, "err", err)
	}

	if inst.Config["volatile.last_state.power"] == "RUNNING" {
		m.log.Info("instance stopped while the daemon was away", "instance", inst.Name)
		_ = m.cfg.DB.Transaction(context.Background(), func(ctx context.Context, tx *db.Tx) error {
			return tx.UpdateInstanceConfig(ctx, inst.Name, map[string]string{"volatile.last_state.power": "STOPPED"}, nil)
		})
	}
}

// removeOrphans deletes instance directories and storage that no DB row names: the
// remains of a create that crashed before writing its row.
func (m *Manager) removeOrphans(known map[string]bool) {
	entries, _ := os.ReadDir(filepath.Join(m.cfg.Dir, "instances"))
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}

		m.log.Info("removing half-created instance", "instance", e.Name())
		_ = m.cfg.Pool.DeleteInstance(e.Name())
		_ = os.RemoveAll(filepath.Join(m.cfg.Dir, "instances", e.Name()))
	}
}
