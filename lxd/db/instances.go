package db

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// Loading instances takes four queries whatever their number: rows, then config,
// devices and profiles, either of every instance or of one id (using the indexes
// behind the UNIQUE constraints).
type instanceQueries struct {
	rows     string
	config   string
	devices  string
	profiles string
}

const instanceColumns = `id, name, type, architecture, description, ephemeral, stateful, creation_date, last_use_date,
    member_id, (SELECT m.name FROM members m WHERE m.id = member_id)`

var instancesAll = instanceQueries{
	rows:   `SELECT ` + instanceColumns + ` FROM instances ORDER BY name`,
	config: `SELECT instance_id, key, value FROM instances_config`,
	devices: `
SELECT d.instance_id, d.name, d.type, c.key, c.value
FROM instances_devices d LEFT JOIN instances_devices_config c ON c.instance_device_id = d.id`,
	profiles: `
SELECT ip.instance_id, p.name
FROM instances_profiles ip JOIN profiles p ON p.id = ip.profile_id
ORDER BY ip.instance_id, ip.apply_order`,
}

// instanceOne takes the name for rows and the instance id for the others.
var instanceOne = instanceQueries{
	rows:   `SELECT ` + instanceColumns + ` FROM instances WHERE name = ?`,
	config: `SELECT instance_id, key, value FROM instances_config WHERE instance_id = ?`,
	devices: `
SELECT d.instance_id, d.name, d.type, c.key, c.value
FROM instances_devices d LEFT JOIN instances_devices_config c ON c.instance_device_id = d.id
WHERE d.instance_id = ?`,
	profiles: `
SELECT ip.instance_id, p.name
FROM instances_profiles ip JOIN profiles p ON p.id = ip.profile_id
WHERE ip.instance_id = ?
ORDER BY ip.apply_order`,
}

// instancesOn selects the instances of one member (member_id = ?): the rows query
// and the children of those rows only.
var instancesOn = instanceQueries{
	rows:   `SELECT ` + instanceColumns + ` FROM instances WHERE member_id = ? ORDER BY name`,
	config: instancesAll.config + ` WHERE instance_id IN (SELECT id FROM instances WHERE member_id = ?)`,
	devices: instancesAll.devices + `
WHERE d.instance_id IN (SELECT id FROM instances WHERE member_id = ?)`,
	profiles: `
SELECT ip.instance_id, p.name
FROM instances_profiles ip JOIN profiles p ON p.id = ip.profile_id
WHERE ip.instance_id IN (SELECT id FROM instances WHERE member_id = ?)
ORDER BY ip.instance_id, ip.apply_order`,
}

// GetInstances returns all instances of every member sorted by name, with config,
// devices and profiles: for what is global in a cluster (names, used_by, project
// limits). What acts on the host (reconcile, autostart, monitors, metrics) takes only
// its own member's, through GetInstancesWhere.
func (tx *Tx) GetInstances(ctx context.Context) ([]Instance, error) {
	return tx.getInstances(ctx, InstanceFilter{})
}

// GetInstancesWhere returns the instances the filter selects, sorted by name.
func (tx *Tx) GetInstancesWhere(ctx context.Context, filter InstanceFilter) ([]Instance, error) {
	return tx.getInstances(ctx, filter)
}

// GetInstance returns one instance, or a 404 StatusError.
func (tx *Tx) GetInstance(ctx context.Context, name string) (*Instance, error) {
	insts, err := tx.getInstances(ctx, InstanceFilter{Name: &name})
	if err != nil {
		return nil, err
	}

	if len(insts) == 0 {
		return nil, notFound("instance", name)
	}

	return &insts[0], nil
}

func (tx *Tx) getInstances(ctx context.Context, filter InstanceFilter) ([]Instance, error) {
	q := instancesAll
	var rowArgs, childArgs []any
	switch {
	case filter.Name != nil:
		q = instanceOne
		rowArgs = []any{*filter.Name}
	case filter.MemberID != 0:
		q = instancesOn
		rowArgs = []any{filter.MemberID}
		childArgs = rowArgs
	}

	rows, err := tx.tx.QueryContext(ctx, q.rows, rowArgs...)
	if err != nil {
		return nil, fmt.Errorf("querying instances: %w", err)
	}

	defer func() { _ = rows.Close() }()

	insts := []Instance{}
	for rows.Next() {
		var inst Instance
		err := rows.Scan(&inst.ID, &inst.Name, &inst.Type, &inst.Architecture, &inst.Description,
			&inst.Ephemeral, &inst.Stateful, dbTime{&inst.CreatedAt}, dbTime{&inst.LastUsedAt}, &inst.MemberID, &inst.Location)
		if err != nil {
			return nil, fmt.Errorf("scanning instance: %w", err)
		}

		insts = append(insts, inst)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading instances: %w", err)
	}

	_ = rows.Close()
	if len(insts) == 0 {
		return insts, nil
	}

	if filter.Name != nil {
		if filter.MemberID != 0 && insts[0].MemberID != filter.MemberID {
			return []Instance{}, nil
		}

		childArgs = []any{insts[0].ID}
	}

	config, err := tx.loadConfig(ctx, q.config, childArgs...)
	if err != nil {
		return nil, fmt.Errorf("loading instance config: %w", err)
	}

	devices, err := tx.loadDevices(ctx, q.devices, childArgs...)
	if err != nil {
		return nil, fmt.Errorf("loading instance devices: %w", err)
	}

	profiles, err := tx.loadInstanceProfiles(ctx, q.profiles, childArgs...)
	if err != nil {
		return nil, err
	}

	for i := range insts {
		id := insts[i].ID
		insts[i].Config = orEmpty(config[id])
		insts[i].Devices = orEmpty(devices[id])
		insts[i].Profiles = profiles[id]
		if insts[i].Profiles == nil {
			insts[i].Profiles = []string{}
		}
	}

	return insts, nil
}

func (tx *Tx) loadInstanceProfiles(ctx context.Context, query string, args ...any) (map[int64][]string, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying instance profiles: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := map[int64][]string{}
	for rows.Next() {
		var id int64
		var name string
		err := rows.Scan(&id, &name)
		if err != nil {
			return nil, fmt.Errorf("scanning instance profile: %w", err)
		}

		out[id] = append(out[id], name)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading instance profiles: %w", err)
	}

	return out, nil
}

const instanceIDSelect = `SELECT id FROM instances WHERE name = ?`

// instanceID returns the id of the named instance, or a 404 StatusError.
func (tx *Tx) instanceID(ctx context.Context, name string) (int64, error) {
	return tx.lookupID(ctx, instanceIDSelect, "instance", name)
}

// InstanceExists reports whether an instance with that name exists.
func (tx *Tx) InstanceExists(ctx context.Context, name string) (bool, error) {
	_, err := tx.instanceID(ctx, name)
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		return false, nil
	}

	if err != nil {
		return false, err
	}

	return true, nil
}

// instanceInsert takes the project of the key (shared/project) for project_id: a key
// whose project does not exist fails on NOT NULL.
const instanceInsert = `
INSERT INTO instances (name, type, architecture, description, ephemeral, stateful, creation_date, last_use_date, project_id, member_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT id FROM projects WHERE name = ?), ?)`

const instanceConfigInsert = `INSERT INTO instances_config (instance_id, key, value) VALUES (?, ?, ?)`

var instanceDeviceStmts = deviceStmts{
	device: `INSERT INTO instances_devices (instance_id, name, type) VALUES (?, ?, ?)`,
	config: `INSERT INTO instances_devices_config (instance_device_id, key, value) VALUES (?, ?, ?)`,
}

// CreateInstance inserts the instance with its config, devices and profiles (in
// order) and returns its id. A missing profile is a 404, a taken name a 409.
func (tx *Tx) CreateInstance(ctx context.Context, inst Instance) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, instanceInsert, inst.Name, inst.Type, inst.Architecture, inst.Description,
		inst.Ephemeral, inst.Stateful, timeToDB(inst.CreatedAt), timeToDB(inst.LastUsedAt), project.Of(inst.Name), memberOrSelf(inst.MemberID))
	if isUnique(err) {
		return 0, alreadyExists("instance", inst.Name)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting instance %q: %w", inst.Name, err)
	}

	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("inserting instance %q: %w", inst.Name, err)
	}

	err = tx.insertInstanceChildren(ctx, id, inst)
	if err != nil {
		return 0, fmt.Errorf("inserting instance %q: %w", inst.Name, err)
	}

	return id, nil
}

func (tx *Tx) insertInstanceChildren(ctx context.Context, id int64, inst Instance) error {
	err := tx.insertConfig(ctx, instanceConfigInsert, id, inst.Config)
	if err != nil {
		return err
	}

	err = tx.insertDevices(ctx, instanceDeviceStmts, id, inst.Devices)
	if err != nil {
		return err
	}

	return tx.insertInstanceProfiles(ctx, id, inst.Profiles)
}

const instanceProfileInsert = `INSERT INTO instances_profiles (instance_id, profile_id, apply_order) VALUES (?, ?, ?)`

func (tx *Tx) insertInstanceProfiles(ctx context.Context, id int64, profiles []string) error {
	for i, name := range profiles {
		profileID, err := tx.profileID(ctx, name)
		if err != nil {
			return err
		}

		_, err = tx.tx.ExecContext(ctx, instanceProfileInsert, id, profileID, i)
		if isUnique(err) {
			return api.StatusErrorf(http.StatusBadRequest, "profile %q is listed twice", name)
		}

		if err != nil {
			return fmt.Errorf("applying profile %q: %w", name, err)
		}
	}

	return nil
}

const instanceUpdate = `
UPDATE instances SET description = ?, architecture = ?, ephemeral = ?, stateful = ? WHERE id = ?`

// instanceChildrenDelete each take the instance id; device config goes by cascade.
var instanceChildrenDelete = []string{
	`DELETE FROM instances_config WHERE instance_id = ?`,
	`DELETE FROM instances_devices WHERE instance_id = ?`,
	`DELETE FROM instances_profiles WHERE instance_id = ?`,
}

// UpdateInstance replaces description, architecture, ephemeral, stateful, config,
// devices and profiles of the named instance. Name, type and dates are kept.
func (tx *Tx) UpdateInstance(ctx context.Context, name string, inst Instance) error {
	id, err := tx.instanceID(ctx, name)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, instanceUpdate, inst.Description, inst.Architecture, inst.Ephemeral, inst.Stateful, id)
	if err != nil {
		return fmt.Errorf("updating instance %q: %w", name, err)
	}

	err = tx.execEach(ctx, instanceChildrenDelete, id)
	if err != nil {
		return fmt.Errorf("clearing instance %q: %w", name, err)
	}

	err = tx.insertInstanceChildren(ctx, id, inst)
	if err != nil {
		return fmt.Errorf("updating instance %q: %w", name, err)
	}

	return nil
}

const instanceConfigUpsert = `
INSERT INTO instances_config (instance_id, key, value) VALUES (?, ?, ?)
ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value`

const instanceConfigDelete = `DELETE FROM instances_config WHERE instance_id = ? AND key = ?`

// UpdateInstanceConfig removes the unset keys, then sets the set keys (an empty
// value is stored as is), leaving every other key alone. Meant for volatile.*.
func (tx *Tx) UpdateInstanceConfig(ctx context.Context, name string, set map[string]string, unset []string) error {
	id, err := tx.instanceID(ctx, name)
	if err != nil {
		return err
	}

	err = tx.deleteConfigKeys(ctx, instanceConfigDelete, id, unset)
	if err != nil {
		return fmt.Errorf("updating config of instance %q: %w", name, err)
	}

	err = tx.insertConfig(ctx, instanceConfigUpsert, id, set)
	if err != nil {
		return fmt.Errorf("updating config of instance %q: %w", name, err)
	}

	return nil
}

const instanceLastUsedUpdate = `UPDATE instances SET last_use_date = ? WHERE name = ?`

// UpdateInstanceLastUsed records when the instance was last started.
func (tx *Tx) UpdateInstanceLastUsed(ctx context.Context, name string, t time.Time) error {
	return tx.execOne(ctx, "instance", name, instanceLastUsedUpdate, timeToDB(t), name)
}

const instanceRename = `UPDATE instances SET name = ? WHERE name = ?`

// RenameInstance renames an instance: 404 if old is missing, 409 if new is taken.
func (tx *Tx) RenameInstance(ctx context.Context, oldName, newName string) error {
	return tx.rename(ctx, "instance", instanceRename, oldName, newName)
}

const instanceDelete = `DELETE FROM instances WHERE name = ?`

// DeleteInstance deletes an instance; its config, devices and profile links go with it.
func (tx *Tx) DeleteInstance(ctx context.Context, name string) error {
	return tx.execOne(ctx, "instance", name, instanceDelete, name)
}

const instanceConfigValuesSelect = `
SELECT i.name, c.value
FROM instances_config c JOIN instances i ON i.id = c.instance_id
WHERE c.key = ?`

// GetInstanceConfigValues maps instance name to its value for key, for instances
// that have it set (e.g. every volatile.idmap.base, to allocate a free range).
func (tx *Tx) GetInstanceConfigValues(ctx context.Context, key string) (map[string]string, error) {
	rows, err := tx.tx.QueryContext(ctx, instanceConfigValuesSelect, key)
	if err != nil {
		return nil, fmt.Errorf("querying instance config %q: %w", key, err)
	}

	defer func() { _ = rows.Close() }()

	out := map[string]string{}
	for rows.Next() {
		var name, value string
		err := rows.Scan(&name, &value)
		if err != nil {
			return nil, fmt.Errorf("scanning instance config %q: %w", key, err)
		}

		out[name] = value
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading instance config %q: %w", key, err)
	}

	return out, nil
}

// memberOrSelf is the member an instance is created on: 1 (this host, unclustered)
// when the caller left MemberID zero.
func memberOrSelf(id int64) int64 {
	if id == 0 {
		return 1
	}

	return id
}
