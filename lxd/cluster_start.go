package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
)

// openDB opens the inventory: berth.db on a host never clustered (no dqlite at all),
// the global dqlite database on a member (local.db says which).
func (d *Daemon) openDB(ctx context.Context) error {
	var err error
	d.cluster, err = cluster.Open(ctx, cluster.Config{Dir: d.dir, Log: d.log, Levels: levels()})
	if err != nil {
		return fmt.Errorf("reading cluster state: %w", err)
	}

	if d.cluster.Enabled() {
		d.db, err = d.cluster.OpenDB(ctx)
		if err != nil {
			return err
		}

		d.log.Info("clustered", "member", d.cluster.Self().Name, "address", d.cluster.Self().Address)
	} else {
		d.db, err = db.Open(ctx, d.dir)
		if err != nil {
			return fmt.Errorf("opening database: %w", err)
		}

		// A member just removed from its cluster keeps its own listener addresses.
		if kept := d.cluster.Left(); len(kept) > 0 {
			err = d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
				return tx.UpdateNodeConfig(ctx, kept, nil)
			})
			if err != nil {
				return fmt.Errorf("keeping this server's addresses after leaving the cluster: %w", err)
			}

			d.log.Info("left the cluster: standalone with an empty inventory", "kept", kept)
		}
	}

	d.cluster.SetDB(d.db)
	return nil
}

// requestRestart has the daemon stop serving and re-exec itself.
func (d *Daemon) requestRestart() {
	d.restartMu.Do(func() { close(d.restart) })
}

func (d *Daemon) restarting() bool {
	select {
	case <-d.restart:
		return true
	default:
		return false
	}
}

// reexec replaces this process with the sealed copy of its binary, with the same
// arguments and environment: the one startup path then opens the clustered database.
// Containers keep running, as on any daemon restart; the held berth.db writer and
// every other descriptor close with the exec.
func (d *Daemon) reexec() error {
	d.stopListeners()
	d.cluster.Close()
	d.log.Info("re-executing berthd", "args", os.Args)
	err := syscall.Exec(d.exePath, os.Args, os.Environ())
	return fmt.Errorf("re-executing berthd: %w", err)
}
