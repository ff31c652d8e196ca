package db

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// defaultProfile is seeded by updateFromV1 and may be neither deleted nor renamed.
const defaultProfile = "default"

const profilesSelect = `
SELECT id, name, description FROM profiles WHERE ? IS NULL OR name = ? ORDER BY name`

const profilesConfigSelect = `
SELECT c.profile_id, c.key, c.value
FROM profiles_config c JOIN profiles p ON p.id = c.profile_id
WHERE ? IS NULL OR p.name = ?`

const profilesDevicesSelect = `
SELECT d.profile_id, d.name, d.type, c.key, c.value
FROM profiles_devices d
JOIN profiles p ON p.id = d.profile_id
LEFT JOIN profiles_devices_config c ON c.profile_device_id = d.id
WHERE ? IS NULL OR p.name = ?`

// GetProfiles returns all profiles sorted by name, with config and devices.
func (tx *Tx) GetProfiles(ctx context.Context) ([]Profile, error) {
	return tx.getProfiles(ctx, nil)
}

// GetProfile returns one profile, or a 404 StatusError.
func (tx *Tx) GetProfile(ctx context.Context, name string) (*Profile, error) {
	profiles, err := tx.getProfiles(ctx, &name)
	if err != nil {
		return nil, err
	}

	if len(profiles) == 0 {
		return nil, notFound("profile", name)
	}

	return &profiles[0], nil
}

func (tx *Tx) getProfiles(ctx context.Context, name *string) ([]Profile, error) {
	rows, err := tx.tx.QueryContext(ctx, profilesSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("querying profiles: %w", err)
	}

	defer func() { _ = rows.Close() }()

	profiles := []Profile{}
	for rows.Next() {
		var p Profile
		err := rows.Scan(&p.ID, &p.Name, &p.Description)
		if err != nil {
			return nil, fmt.Errorf("scanning profile: %w", err)
		}

		profiles = append(profiles, p)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading profiles: %w", err)
	}

	_ = rows.Close()

	config, err := tx.loadConfig(ctx, profilesConfigSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("loading profile config: %w", err)
	}

	devices, err := tx.loadDevices(ctx, profilesDevicesSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("loading profile devices: %w", err)
	}

	for i := range profiles {
		profiles[i].Config = orEmpty(config[profiles[i].ID])
		profiles[i].Devices = orEmpty(devices[profiles[i].ID])
	}

	return profiles, nil
}

const profileIDSelect = `SELECT id FROM profiles WHERE name = ?`

// profileID returns the id of the named profile, or a 404 StatusError.
func (tx *Tx) profileID(ctx context.Context, name string) (int64, error) {
	return tx.lookupID(ctx, profileIDSelect, "profile", name)
}

// profileInsert takes the project of the key (shared/project.ProfileKey) for project_id.
const profileInsert = `
INSERT INTO profiles (name, description, project_id) VALUES (?, ?, (SELECT id FROM projects WHERE name = ?))`

const profileConfigInsert = `INSERT INTO profiles_config (profile_id, key, value) VALUES (?, ?, ?)`

var profileDeviceStmts = deviceStmts{
	device: `INSERT INTO profiles_devices (profile_id, name, type) VALUES (?, ?, ?)`,
	config: `INSERT INTO profiles_devices_config (profile_device_id, key, value) VALUES (?, ?, ?)`,
}

// CreateProfile inserts a profile with its config and devices and returns its id.
func (tx *Tx) CreateProfile(ctx context.Context, p Profile) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, profileInsert, p.Name, p.Description, profileProjectOf(p.Name))
	if isUnique(err) {
		return 0, alreadyExists("profile", p.Name)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting profile %q: %w", p.Name, err)
	}

	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("inserting profile %q: %w", p.Name, err)
	}

	err = tx.insertProfileChildren(ctx, id, p)
	if err != nil {
		return 0, fmt.Errorf("inserting profile %q: %w", p.Name, err)
	}

	return id, nil
}

func (tx *Tx) insertProfileChildren(ctx context.Context, id int64, p Profile) error {
	err := tx.insertConfig(ctx, profileConfigInsert, id, p.Config)
	if err != nil {
		return err
	}

	return tx.insertDevices(ctx, profileDeviceStmts, id, p.Devices)
}

const profileUpdate = `UPDATE profiles SET description = ? WHERE id = ?`

// profileChildrenDelete each take the profile id; device config goes by cascade.
var profileChildrenDelete = []string{
	`DELETE FROM profiles_config WHERE profile_id = ?`,
	`DELETE FROM profiles_devices WHERE profile_id = ?`,
}

// UpdateProfile replaces the description, config and devices of the named profile.
func (tx *Tx) UpdateProfile(ctx context.Context, name string, p Profile) error {
	id, err := tx.profileID(ctx, name)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, profileUpdate, p.Description, id)
	if err != nil {
		return fmt.Errorf("updating profile %q: %w", name, err)
	}

	err = tx.execEach(ctx, profileChildrenDelete, id)
	if err != nil {
		return fmt.Errorf("clearing profile %q: %w", name, err)
	}

	err = tx.insertProfileChildren(ctx, id, p)
	if err != nil {
		return fmt.Errorf("updating profile %q: %w", name, err)
	}

	return nil
}

const profileRename = `UPDATE profiles SET name = ? WHERE name = ?`

// RenameProfile renames a profile. Instances refer to it by id, so they follow.
// The default profile cannot be renamed (400).
func (tx *Tx) RenameProfile(ctx context.Context, oldName, newName string) error {
	if project.ProfileName(oldName) == defaultProfile {
		return api.StatusErrorf(http.StatusBadRequest, "the %q profile cannot be renamed", defaultProfile)
	}

	return tx.rename(ctx, "profile", profileRename, oldName, newName)
}

const profileDelete = `DELETE FROM profiles WHERE id = ?`

// DeleteProfile deletes an unused profile: 409 while an instance uses it, 400 for
// the default profile.
func (tx *Tx) DeleteProfile(ctx context.Context, name string) error {
	if project.ProfileName(name) == defaultProfile {
		return api.StatusErrorf(http.StatusBadRequest, "the %q profile cannot be deleted", defaultProfile)
	}

	id, err := tx.profileID(ctx, name)
	if err != nil {
		return err
	}

	usedBy, err := tx.profileUsedBy(ctx, id)
	if err != nil {
		return fmt.Errorf("deleting profile %q: %w", name, err)
	}

	if len(usedBy) > 0 {
		return api.StatusErrorf(http.StatusConflict, "profile %q is in use", name)
	}

	_, err = tx.tx.ExecContext(ctx, profileDelete, id)
	if err != nil {
		return fmt.Errorf("deleting profile %q: %w", name, err)
	}

	return nil
}

// GetProfileUsedBy returns the sorted names of the instances using the profile.
func (tx *Tx) GetProfileUsedBy(ctx context.Context, name string) ([]string, error) {
	id, err := tx.profileID(ctx, name)
	if err != nil {
		return nil, err
	}

	usedBy, err := tx.profileUsedBy(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("listing users of profile %q: %w", name, err)
	}

	return usedBy, nil
}

const profileUsedBySelect = `
SELECT i.name
FROM instances_profiles ip JOIN instances i ON i.id = ip.instance_id
WHERE ip.profile_id = ?
ORDER BY i.name`

func (tx *Tx) profileUsedBy(ctx context.Context, id int64) ([]string, error) {
	rows, err := tx.tx.QueryContext(ctx, profileUsedBySelect, id)
	if err != nil {
		return nil, err
	}

	defer func() { _ = rows.Close() }()

	names := []string{}
	for rows.Next() {
		var name string
		err := rows.Scan(&name)
		if err != nil {
			return nil, err
		}

		names = append(names, name)
	}

	return names, rows.Err()
}

func profileProjectOf(key string) string {
	proj, _ := project.SplitProfile(key)
	return proj
}

// ProfileProject is the project whose profiles the named project's instances use: its
// own with features.profiles=true, else the default project's. 404 if it is missing.
func (tx *Tx) ProfileProject(ctx context.Context, proj string) (string, error) {
	if proj == "" || proj == DefaultProjectName {
		return DefaultProjectName, nil
	}

	p, err := tx.GetProject(ctx, proj)
	if err != nil {
		return "", err
	}

	// As the API's scope checks read it (validate.IsTrue: "True", "1", "yes" too): a
	// restricted project allowed to write "its own" profiles must get its own here.
	if validate.IsTrue(p.Config["features.profiles"]) {
		return proj, nil
	}

	return DefaultProjectName, nil
}

// ProfileKeyIn is the key of profile name as seen from project proj (ProfileProject).
// A name holding '/' is a 404: it would otherwise spell another project's key.
func (tx *Tx) ProfileKeyIn(ctx context.Context, proj, name string) (string, error) {
	if strings.Contains(name, "/") {
		return "", notFound("profile", name)
	}

	owner, err := tx.ProfileProject(ctx, proj)
	if err != nil {
		return "", err
	}

	return project.ProfileKey(owner, name), nil
}

// GetProjectProfiles returns the profiles project proj owns (keys as names), sorted.
func (tx *Tx) GetProjectProfiles(ctx context.Context, proj string) ([]Profile, error) {
	all, err := tx.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}

	out := []Profile{}
	for _, p := range all {
		if profileProjectOf(p.Name) == proj {
			out = append(out, p)
		}
	}

	return out, nil
}

// DeleteProjectProfiles deletes every profile of project proj (not the default one):
// 409 if an instance still uses one.
func (tx *Tx) DeleteProjectProfiles(ctx context.Context, proj string) error {
	if proj == DefaultProjectName {
		return api.StatusErrorf(http.StatusBadRequest, "the default project's profiles are not deleted with it")
	}

	ps, err := tx.GetProjectProfiles(ctx, proj)
	if err != nil {
		return err
	}

	for _, p := range ps {
		id, err := tx.profileID(ctx, p.Name)
		if err != nil {
			return err
		}

		users, err := tx.profileUsedBy(ctx, id)
		if err != nil {
			return err
		}

		if len(users) > 0 {
			return api.StatusErrorf(http.StatusConflict, "profile %q of project %q is in use", project.ProfileName(p.Name), proj)
		}

		_, err = tx.tx.ExecContext(ctx, profileDelete, id)
		if err != nil {
			return fmt.Errorf("deleting profile %q: %w", p.Name, err)
		}
	}

	return nil
}

// MoveProjectProfiles renames the keys of project oldProj's profiles for its new name
// (the project row is renamed by RenameProject).
func (tx *Tx) MoveProjectProfiles(ctx context.Context, oldProj, newProj string) error {
	_, err := tx.tx.ExecContext(ctx,
		`UPDATE profiles SET name = ? || substr(name, ?) WHERE substr(name, 1, ?) = ?`,
		newProj+"/", len(oldProj)+2, len(oldProj)+1, oldProj+"/")
	if err != nil {
		return fmt.Errorf("moving profiles of project %q to %q: %w", oldProj, newProj, err)
	}

	return nil
}
