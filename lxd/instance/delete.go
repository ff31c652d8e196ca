package instance

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// Delete removes a stopped instance: storage, its own files, then its DB row. Snapshots,
// copies, publishes and exports of it that are running are cancelled first (they clean up
// what they made and release its mounts), rather than waited for.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if n := m.cancelWork(name); n > 0 {
		m.log.Info("cancelled operations on deleted instance", "instance", name, "count", n)
	}

	unlock := m.lock(name)
	defer unlock()

	return m.delete(ctx, name)
}

// Preconditions: the instance lock is held.
func (m *Manager) delete(ctx context.Context, name string) error {
	_, err := m.exists(ctx, name)
	if err != nil {
		return err
	}

	if m.monitor(name) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is running", name)
	}

	pool, err := m.storageOf(ctx, name)
	if err != nil {
		return err
	}

	// Storage first: if it fails the row stays and the user can retry; the reverse order
	// could leave storage that no row names (Reconcile removes such orphans too).
	err = pool.DeleteInstance(name)
	if err != nil {
		return fmt.Errorf("deleting storage of %q: %w", name, err)
	}

	pool.PruneBackupImages()
	if m.cfg.OnDelete != nil {
		m.cfg.OnDelete(name) // its backups
	}

	m.devices.Deleted(name)

	err = os.RemoveAll(m.instanceDir(name))
	if err != nil {
		return fmt.Errorf("deleting files of %q: %w", name, err)
	}

	err = m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteInstance(ctx, name)
	})
	if err != nil {
		return err
	}

	m.mu.Lock()
	delete(m.locks, name)
	m.mu.Unlock()
	m.event("instance-deleted", name, nil)
	return nil
}
