package storage

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/berth-dev/berth/shared/api"
)

// RenameInstance moves a stopped instance's storage to a new name (shared by both drivers:
// their instance trees have the same layout). It refuses while anything is mounted below
// the tree, since the mounts would keep pointing at the old paths.
func (p *pool) RenameInstance(oldName, newName string) error {
	err := p.instanceExists(oldName)
	if err != nil {
		return err
	}

	err = checkName("instance", newName)
	if err != nil {
		return err
	}

	_, err = os.Lstat(p.instanceDir(newName))
	if err == nil {
		return api.StatusErrorf(http.StatusConflict, "instance %q: %w", newName, ErrInstanceExists)
	}

	if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	mounts, err := mountsUnder(p.instanceDir(oldName))
	if err != nil {
		return err
	}

	if len(mounts) > 0 {
		return api.StatusErrorf(http.StatusConflict, "renaming instance %q: %w", oldName, ErrStillMounted)
	}

	err = os.Rename(p.instanceDir(oldName), p.instanceDir(newName))
	if err != nil {
		return fmt.Errorf("renaming instance %q to %q: %w", oldName, newName, err)
	}

	err = p.renameSnapshots(oldName, newName)
	if err != nil {
		return err
	}

	return nil
}
