package networks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/atomicfile"
)

// renameJournal records a rename between its database commit and the move of the files
// (lxd/network/rename.go): a daemon that restarts with it finishes the move when the
// database has the new name, and drops it when the commit did not happen.
type renameJournal struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func (s *Service) journalPath() string { return filepath.Join(s.dir, ".rename.json") }

// Rename gives a managed network a new name. As LXD, a network in use (by an instance or a
// profile) is refused with 400, and a taken name with 409.
func (s *Service) Rename(ctx context.Context, name, newName string) error {
	err := network.ValidateName(newName)
	if err != nil {
		return err
	}

	unlock := s.mgr.Lock()
	defer unlock()
	cur, err := s.getManaged(ctx, name)
	if err != nil {
		return err
	}

	if newName == name {
		return api.StatusErrorf(http.StatusBadRequest, "network %q already has that name", name)
	}

	if len(cur.UsedBy) > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "the network is currently in use by %v", cur.UsedBy)
	}

	_, err = s.Get(ctx, newName)
	if err == nil {
		return api.StatusErrorf(http.StatusConflict, "network %q already exists", newName)
	}

	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		return err
	}

	if ip.LinkExists(newName) {
		return api.StatusErrorf(http.StatusConflict, "a host interface named %q exists", newName)
	}

	err = s.mgr.StopForRename(name)
	if err != nil {
		s.restart(cur)
		return err
	}

	err = s.commitRename(ctx, name, newName)
	if err != nil {
		s.restart(cur)
		return err
	}

	err = s.finishRename(name, newName)
	if err != nil {
		return err
	}

	err = s.mgr.Load(newName, cur.Type, cur.Config)
	if err != nil {
		return fmt.Errorf("starting renamed network %q: %w", newName, err)
	}

	s.applyForwards(ctx, newName)
	s.applyACLs(ctx)
	s.emit("network-renamed", urlOf(newName), map[string]any{"old_name": name})
	return nil
}

// restart brings a network whose rename failed back up under its old name.
func (s *Service) restart(n *api.Network) {
	err := s.mgr.Load(n.Name, n.Type, n.Config)
	if err != nil {
		s.log.Error("restarting network after a failed rename", "network", n.Name, "err", err)
	}
}

// commitRename writes the journal, then the new name in the database; without the commit
// the journal is gone again.
func (s *Service) commitRename(ctx context.Context, name, newName string) error {
	data, err := json.Marshal(renameJournal{From: name, To: newName})
	if err != nil {
		return err
	}

	err = atomicfile.WriteDurable(s.journalPath(), data, 0o600)
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameNetwork(ctx, name, newName)
	})
	if err != nil {
		_ = os.Remove(s.journalPath())
		return err
	}

	return nil
}

// finishRename moves the files and bridge, then drops the journal.
func (s *Service) finishRename(name, newName string) error {
	err := s.mgr.MoveFiles(name, newName)
	if err != nil {
		return err
	}

	err = os.Remove(s.journalPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing rename journal: %w", err)
	}

	return nil
}

// recoverRename finishes or forgets a rename a crash interrupted; it runs before the
// networks are loaded (and before orphaned bridges are removed: the renamed bridge's
// directory is only at its old path).
func (s *Service) recoverRename(ctx context.Context) {
	data, err := os.ReadFile(s.journalPath())
	if errors.Is(err, os.ErrNotExist) {
		return
	}

	var j renameJournal
	if err == nil {
		err = json.Unmarshal(data, &j)
	}

	if err == nil && (network.ValidateName(j.From) != nil || network.ValidateName(j.To) != nil) {
		err = fmt.Errorf("bad names %q, %q", j.From, j.To)
	}

	if err != nil {
		s.log.Error("dropping unreadable network rename journal", "err", err)
		_ = os.Remove(s.journalPath())
		return
	}

	committed := false
	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetNetwork(ctx, j.To)
		committed = err == nil
		return nil
	})
	if err == nil && committed {
		s.log.Info("finishing interrupted network rename", "from", j.From, "to", j.To)
		err = s.finishRename(j.From, j.To)
		if err != nil {
			s.log.Error("finishing interrupted network rename", "err", err)
		}

		return
	}

	_ = os.Remove(s.journalPath())
}

// Leases lists a managed network's DHCP reservations and leases.
func (s *Service) Leases(ctx context.Context, name string) ([]api.NetworkLease, error) {
	_, err := s.getManaged(ctx, name)
	if err != nil {
		return nil, err
	}

	return s.mgr.Leases(name)
}
