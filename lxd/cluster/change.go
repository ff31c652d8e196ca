package cluster

import (
	"context"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/db"
)

// change is one enable or join in progress. Until it is finished, undo (deferred by the
// caller) stops the node it started, gives berth.db's writer back and removes the
// half-made cluster state, so the host is left unclustered and working.
type change struct {
	s        *Service
	what     string // "enable" or "join", for the log
	node     node   // the dqlite node it started, if any
	release  func() // gives berth.db's writer back, once held
	finished bool
}

// beginChange starts an enable or join: only one at a time, and never on a member.
func (s *Service) beginChange(what string) (*change, error) {
	err := s.begin()
	if err != nil {
		return nil, err
	}

	return &change{s: s, what: what}, nil
}

// holdWriter takes berth.db's single writer for good: from here on nothing written to
// it would be kept (the re-exec opens the cluster database).
func (c *change) holdWriter(file *db.DB) error {
	release, err := file.HoldWriter(context.Background())
	if err != nil {
		return err
	}

	c.release = release
	return nil
}

// finish writes berth.db's read-only backup and local.db (the switch), then stops the
// node: the restarted daemon opens it again.
func (c *change) finish(ctx context.Context, file *db.DB, l local) error {
	backup := filepath.Join(c.s.dir, "database", BackupFile)
	err := file.BackupTo(ctx, backup)
	if err != nil {
		return err
	}

	err = c.s.commit(ctx, l)
	if err != nil {
		_ = os.Remove(backup)
		return err
	}

	c.finished = true
	err = c.node.Close()
	if err != nil {
		c.s.log.Warn("stopping the database node before restart", "err", err)
	}

	return nil
}

// undo reverts an unfinished change (deferred right after beginChange).
func (c *change) undo() {
	if c.finished {
		return
	}

	if c.node != nil {
		_ = c.node.Close()
	}

	if c.release != nil {
		c.release()
	}

	err := removeHalfMade(c.s.dir)
	if err != nil {
		c.s.log.Warn("cleaning up after a failed cluster "+c.what, "err", err)
	}

	c.s.end()
}
