package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// Rename gives an instance's backup a new name (both names already checked): 404 if it
// is missing, 409 if the new name is taken. The tarball moves with RENAME_NOREPLACE, so
// two renames (or a rename and an export) racing to one name cannot overwrite each
// other; the record (<backup>.json, which lists it) follows with the new name in it.
func (s *Service) Rename(name, backup, newName string) error {
	dir := filepath.Join(s.Dir(), name)
	data, err := os.ReadFile(filepath.Join(dir, backup+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return api.StatusErrorf(http.StatusNotFound, "backup %q of %q not found", backup, name)
	}

	if err != nil {
		return err
	}

	rec := api.InstanceBackup{}
	err = json.Unmarshal(data, &rec)
	if err != nil {
		return fmt.Errorf("reading backup %q of %q: %w", backup, name, err)
	}

	err = unix.Renameat2(unix.AT_FDCWD, filepath.Join(dir, backup+".tar.gz"), unix.AT_FDCWD, filepath.Join(dir, newName+".tar.gz"), unix.RENAME_NOREPLACE)
	switch {
	case errors.Is(err, unix.EEXIST):
		return api.StatusErrorf(http.StatusConflict, "backup %q of %q already exists", newName, name)
	case errors.Is(err, unix.ENOENT):
		return api.StatusErrorf(http.StatusNotFound, "backup %q of %q not found", backup, name)
	case err != nil:
		return fmt.Errorf("renaming backup %q of %q: %w", backup, name, err)
	}

	rec.Name = newName
	data, _ = json.Marshal(rec)
	tmp := filepath.Join(dir, ".tmp-"+newName+".record") // not *.json: the listing must not see it
	err = os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, newName+".json"))
	}

	if err != nil {
		_ = os.Remove(tmp)
		_ = os.Rename(filepath.Join(dir, newName+".tar.gz"), filepath.Join(dir, backup+".tar.gz"))
		return fmt.Errorf("recording backup %q of %q: %w", newName, name, err)
	}

	return os.Remove(filepath.Join(dir, backup+".json"))
}
