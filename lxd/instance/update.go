package instance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/etag"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/shared/api"
)

// UpdateRequest is a validated replacement of an instance's writable fields (PUT; PATCH
// is merged into a full request by the caller).
type UpdateRequest struct {
	Name string
	row  db.Instance // the new row
	etag string      // ETag of the instance it was validated against
}

// PrepareUpdate validates a new writable state for an instance against its current one.
// Every key and device is checked and the expanded result too (limits, hotplug of a
// running container); an error is a StatusError (400 naming the key, 404) and nothing has
// changed. Volatile keys are the server's record: those the request leaves out are kept,
// and so are those it sends with another value (ignored), except a NIC's hwaddr.
func (cf *Configurator) PrepareUpdate(ctx context.Context, name string, put api.InstancePut) (*UpdateRequest, error) {
	var err error
	put.Profiles, err = withProfileKeys(ctx, cf.db, name, put.Profiles)
	if err != nil {
		return nil, err
	}

	cur, profiles, err := cf.loadWith(ctx, name, put.Profiles)
	if err != nil {
		return nil, err
	}

	if put.Architecture != "" && put.Architecture != cur.Architecture {
		return nil, api.StatusErrorf(http.StatusBadRequest, "the architecture cannot be changed (%q to %q)", cur.Architecture, put.Architecture)
	}

	config := map[string]string{}
	for k, v := range cur.Config {
		if strings.HasPrefix(k, "volatile.") {
			config[k] = v
		}
	}

	local := map[string]string{}
	for k, v := range put.Config {
		if !strings.HasPrefix(k, "volatile.") {
			local[k] = v
			config[k] = v
			continue
		}

		// Another value is ignored, the server's record kept: lxc copy --refresh PUTs the
		// source's volatile keys (its uuid, id maps) onto the refreshed target, and LXD
		// takes them; here they stay the target's own.
		if cur.Config[k] != v && !strings.HasSuffix(k, ".hwaddr") {
			continue
		}

		config[k] = v
	}

	err = ValidateConfig(local)
	if err != nil {
		return nil, err
	}

	devices := api.NonNil(put.Devices)

	err = ValidateDevices(devices)
	if err != nil {
		return nil, err
	}

	row := *cur
	row.Config = config
	row.Devices = devices
	row.Profiles = put.Profiles
	row.Ephemeral = put.Ephemeral
	row.Description = put.Description
	if row.Profiles == nil {
		row.Profiles = []string{}
	}

	err = cf.checkExpanded(cur, &row, profiles, profiles)
	if err != nil {
		return nil, err
	}

	err = cf.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return checkProject(ctx, tx, &row)
	})
	if err != nil {
		return nil, err
	}

	out := cf.view.render(cur, profiles, false)
	etag, err := etag.Hash(ETag(&out.Instance))
	if err != nil {
		return nil, err
	}

	return &UpdateRequest{Name: name, row: row, etag: etag}, nil
}

// checkExpanded validates what the instance would expand to and, for a running
// container, that every device change can be made live.
func (cf *Configurator) checkExpanded(old, new *db.Instance, oldProfiles, newProfiles map[string]*db.Profile) error {
	config, devices := Expand(new, newProfiles)
	_, err := cf.limitsOf(new.Name, config)
	if err != nil {
		return err
	}

	_, err = seccompOf(config)
	if err != nil {
		return err
	}

	err = ValidateDevices(devices)
	if err == nil {
		err = device.CheckVolumes(new.Name, devices)
	}

	if err != nil {
		return err
	}

	_, oldDevices := Expand(old, oldProfiles)
	err = cf.checkRootSize(new.Name, oldDevices, devices)
	if err != nil {
		return err
	}

	if cf.host.monitor(new.Name) == nil {
		return nil
	}

	return checkHotplug(oldDevices, devices)
}

// applyRootChange gives the pool a root disk size that changed from old to new, running
// or not (the limit lives in the pool).
func (cf *Configurator) applyRootChange(old, new *db.Instance, oldProfiles, newProfiles map[string]*db.Profile) error {
	_, oldDevices := Expand(old, oldProfiles)
	_, devices := Expand(new, newProfiles)
	if rootDiskSize(oldDevices) == rootDiskSize(devices) {
		return nil
	}

	return cf.applyRootSize(new.Name, devices)
}

// Update writes a prepared update and applies it to the running container: limits through
// its cgroups, device changes by hotplug. If the live part fails the old state is put
// back. An instance changed since PrepareUpdate gets 412.
func (cf *Configurator) Update(ctx context.Context, req *UpdateRequest) error {
	unlock := cf.host.lock(req.Name)
	defer unlock()

	cur, profiles, err := cf.loadWith(ctx, req.Name, req.row.Profiles)
	if err != nil {
		return err
	}

	out := cf.view.render(cur, profiles, false)
	etag, err := etag.Hash(ETag(&out.Instance))
	if err != nil {
		return err
	}

	if etag != req.etag {
		return api.StatusErrorf(http.StatusPreconditionFailed, "instance %q changed during the update; retry", req.Name)
	}

	err = cf.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := checkProject(ctx, tx, &req.row) // again, with what other writers did since
		if err != nil {
			return err
		}

		return tx.UpdateInstance(ctx, req.Name, req.row)
	})
	if err != nil {
		return err
	}

	err = cf.applyRootChange(cur, &req.row, profiles, profiles)
	if err == nil {
		err = cf.applyLive(cur, &req.row, profiles, profiles)
	}

	if err != nil {
		rerr := cf.db.Transaction(context.Background(), func(ctx context.Context, tx *db.Tx) error {
			return tx.UpdateInstance(ctx, req.Name, *cur)
		})

		_ = cf.applyLive(&req.row, cur, profiles, profiles)
		_ = cf.applyRootChange(&req.row, cur, profiles, profiles)
		return errors.Join(err, rerr)
	}

	cf.host.event("instance-updated", req.Name, nil)
	return nil
}

// applyLive brings a running container from old to new (no-op when stopped).
func (cf *Configurator) applyLive(old, new *db.Instance, oldProfiles, newProfiles map[string]*db.Profile) error {
	mon := cf.host.monitor(new.Name)
	if mon == nil {
		return nil
	}

	config, devices := Expand(new, newProfiles)
	limits, err := cf.limitsOf(new.Name, config)
	if err != nil {
		return err
	}

	err = cf.applyLimits(new.Name, limits)
	if err != nil {
		return err
	}

	ids, err := cf.host.idsOf(new)
	if err != nil {
		return err
	}

	_, oldDevices := Expand(old, oldProfiles)

	// The root disk's size changes through the pool (applyRootChange).
	return cf.devices.Hotplug(context.Background(), cf.host.deviceInstance(new, ids, ""), mon.InitPID(),
		withoutRootSize(oldDevices), withoutRootSize(devices), cf.rebootMounts(new.Name))
}

// loadWith reads an instance and the given profiles (those it would use after an
// update; a missing one is a 400 naming it).
func (cf *Configurator) loadWith(ctx context.Context, name string, names []string) (*db.Instance, map[string]*db.Profile, error) {
	var inst *db.Instance
	profiles := map[string]*db.Profile{}
	err := cf.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		inst, err = tx.GetInstance(ctx, name)
		if err != nil {
			return err
		}

		seen := map[string]bool{}
		for _, p := range append(append([]string{}, inst.Profiles...), names...) {
			if seen[p] {
				continue
			}

			seen[p] = true
			profiles[p], err = tx.GetProfile(ctx, p)
			if api.StatusErrorCheck(err, http.StatusNotFound) {
				return api.StatusErrorf(http.StatusBadRequest, "profile %q does not exist", p)
			}

			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		return nil, nil, err
	}

	dup := map[string]bool{}
	for _, p := range names {
		if dup[p] {
			return nil, nil, api.StatusErrorf(http.StatusBadRequest, "profile %q is listed twice", p)
		}

		dup[p] = true
	}

	return inst, profiles, nil
}

// CheckNewProfile validates a profile about to be created: the key rules, and no root
// disk size the pool cannot enforce.
func (cf *Configurator) CheckNewProfile(p *db.Profile) error {
	err := ValidateConfig(p.Config)
	if err != nil {
		return err
	}

	err = ValidateDevices(p.Devices)
	if err != nil {
		return err
	}

	return cf.checkSize("", nil, p.Devices)
}

// CheckProfile validates a profile's new config and devices against every instance using
// it: the key rules, the expanded result, and for running ones that the change can be
// made live. Nothing is written.
func (cf *Configurator) CheckProfile(ctx context.Context, name string, p *db.Profile) error {
	err := ValidateConfig(p.Config)
	if err != nil {
		return err
	}

	err = ValidateDevices(p.Devices)
	if err != nil {
		return err
	}

	insts, oldProfiles, err := cf.profileUsers(ctx, name)
	if err != nil {
		return err
	}

	// Refused even without users: every instance is on the one pool.
	if cur := oldProfiles[name]; cur != nil {
		err = cf.checkSize("", cur.Devices, p.Devices)
		if err != nil {
			return err
		}
	}

	newProfiles := withProfile(oldProfiles, p)
	for i := range insts {
		err = cf.checkExpanded(&insts[i], &insts[i], oldProfiles, newProfiles)
		if err != nil {
			return fmt.Errorf("instance %q: %w", insts[i].Name, err)
		}
	}

	// Its users' projects must allow what they would expand to (restrictions, limits).
	return cf.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for i := range insts {
			err := checkProjectWith(ctx, tx, &insts[i], newProfiles)
			if err != nil {
				return err
			}
		}

		return nil
	})
}

// ProfileChanged applies a profile's change (old is its previous content) to every
// running instance using it; failures are joined and the rest still applied.
func (cf *Configurator) ProfileChanged(ctx context.Context, name string, old *db.Profile) error {
	insts, newProfiles, err := cf.profileUsers(ctx, name)
	if err != nil {
		return err
	}

	oldProfiles := withProfile(newProfiles, old)
	var errs []error
	for i := range insts {
		inst := &insts[i]
		unlock := cf.host.lock(inst.Name)
		running := cf.host.monitor(inst.Name) != nil
		err := cf.applyRootChange(inst, inst, oldProfiles, newProfiles)
		if err == nil && running {
			err = cf.applyLive(inst, inst, oldProfiles, newProfiles)
		}

		unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("applying profile %q to %q: %w", name, inst.Name, err))
			continue
		}

		if running {
			cf.host.event("instance-updated", inst.Name, nil)
		}
	}

	return errors.Join(errs...)
}

// profileUsers returns the instances using a profile and every profile they use.
func (cf *Configurator) profileUsers(ctx context.Context, name string) ([]db.Instance, map[string]*db.Profile, error) {
	var insts []db.Instance
	profiles := map[string]*db.Profile{}
	err := cf.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		users, err := tx.GetProfileUsedBy(ctx, name)
		if err != nil {
			return err
		}

		all, err := tx.GetProfiles(ctx)
		if err != nil {
			return err
		}

		for i := range all {
			profiles[all[i].Name] = &all[i]
		}

		for _, u := range users {
			inst, err := tx.GetInstance(ctx, u)
			if err != nil {
				return err
			}

			insts = append(insts, *inst)
		}

		return nil
	})

	return insts, profiles, err
}

func withProfile(profiles map[string]*db.Profile, p *db.Profile) map[string]*db.Profile {
	out := make(map[string]*db.Profile, len(profiles))
	for k, v := range profiles {
		out[k] = v
	}

	out[p.Name] = p
	return out
}
