package volumes

import (
	"context"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// Volumes and projects. A custom volume belongs to one project; the service works on
// volume keys (shared/project VolumeKey: the name in the default project,
// "<name>@<project>" elsewhere), which are its rows' names and its host-side names, so
// that two projects' volumes of one name never share a row, a directory, a snapshot, a
// backup or a marker. The API layer turns a request's names into keys (KeyIn); a disk
// device's source is a name in its instance's project, turned into a key here (Open,
// CheckAttach). Whose volumes a project uses is db.VolumeOwner: its own with
// features.storage.volumes, else the default project's, none for a restricted project
// without the feature.

// KeyIn is the key of volume name seen from project proj, or the error that refuses it:
// a bad name (400; a name never holds '@', which would spell another project's key), a
// missing project (404), a restricted project without volumes of its own (403).
func (s *Service) KeyIn(ctx context.Context, proj, name string) (string, error) {
	err := ValidateName("storage volume", name) // a volume, never "volume/snapshot"
	if err != nil {
		return "", err
	}

	var owner string
	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		owner, err = tx.VolumeProject(ctx, proj)
		return err
	})
	if err != nil {
		return "", err
	}

	return KeyOf(owner, name)
}

// KeyOf is the key of volume name (or "volume/snapshot", a copy's source) of the project
// that owns it; a 400 for a bad name.
func KeyOf(owner, name string) (string, error) {
	vol, snap, isSnap := strings.Cut(name, "/")
	err := ValidateName("storage volume", vol)
	if err == nil && isSnap {
		err = ValidateName("snapshot", snap)
	}

	if err != nil {
		return "", err
	}

	key := project.VolumeKey(owner, vol)
	if isSnap {
		key += "/" + snap
	}

	return key, nil
}

// validateKey checks a key's name (and its project's, outside the default one).
func validateKey(kind, key string) error {
	proj, name := project.SplitVolume(key)
	if proj != project.Default || strings.Contains(key, project.VolumeSep) {
		err := project.ValidateName(proj)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "%v", err)
		}
	}

	return ValidateName(kind, name)
}

// ownersOf maps each project to the project whose volumes it uses ("" for none).
func ownersOf(ctx context.Context, tx *db.Tx) (map[string]string, error) {
	return tx.VolumeOwners(ctx)
}

// diskKey is the volume a disk device of project proj attaches, false when it names none
// it may use (a bad source, or a project without volumes).
func diskKey(owners map[string]string, proj, pool, source string) (key, bool) {
	owner := owners[proj]
	if owner == "" {
		return key{}, false
	}

	k, err := KeyOf(owner, source)
	if err != nil || strings.Contains(source, "/") {
		return key{}, false
	}

	return key{pool, k}, true
}
