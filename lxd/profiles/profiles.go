// Package profiles owns profile records: it validates them, writes them to the database
// and has the instances that use a profile re-applied when it changes, putting the old
// profile back if that fails. Handlers decode a request, call one method and respond.
package profiles

import (
	"context"
	"errors"
	"maps"
	"net/http"
	neturl "net/url"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// Instances is what profiles need of the instance manager (*instance.Configurator).
type Instances interface {
	// CheckNewProfile validates a new profile's keys and devices (and that this host
	// can honour them, such as a root disk size).
	CheckNewProfile(p *db.Profile) error
	// CheckProfile validates what every instance using profile name would expand to
	// with p, and that running ones can take the change live.
	CheckProfile(ctx context.Context, name string, p *db.Profile) error
	// ProfileChanged re-applies the profile to the running instances using it; old is
	// what they were running with.
	ProfileChanged(ctx context.Context, name string, old *db.Profile) error
}

// Emit sends a lifecycle event ("profile-created", its URL, extra context).
type Emit func(action, url string, ctx map[string]any)

// Service manages profiles.
type Service struct {
	db        *db.DB
	instances Instances
	emit      Emit
}

// New returns the profile service.
func New(d *db.DB, instances Instances, emit Emit) *Service {
	return &Service{db: d, instances: instances, emit: emit}
}

// Patch is a PATCH body: absent fields are kept, config and device maps are merged.
type Patch struct {
	Config      map[string]string            `json:"config"`
	Description *string                      `json:"description"`
	Devices     map[string]map[string]string `json:"devices"`
}

func url(name string) string { return "/1.0/profiles/" + neturl.PathEscape(name) }

// ETag covers what LXD's does: config, description, devices.
func ETag(p *api.Profile) any {
	return []any{p.Config, p.Description, p.Devices}
}

func toAPI(ctx context.Context, tx *db.Tx, p *db.Profile) (*api.Profile, error) {
	users, err := tx.GetProfileUsedBy(ctx, p.Name)
	if err != nil {
		return nil, err
	}

	used := make([]string, 0, len(users))
	for _, u := range users {
		used = append(used, projects.InstanceURL(u))
	}

	return &api.Profile{
		ProfilePut: api.ProfilePut{Config: p.Config, Description: p.Description, Devices: p.Devices},
		Name:       project.ProfileName(p.Name),
		UsedBy:     used,
	}, nil
}

// keyIn is the key of profile name seen from project proj: the project's own profile
// with features.profiles, else the default project's.
func keyIn(ctx context.Context, tx *db.Tx, proj, name string) (string, error) {
	return tx.ProfileKeyIn(ctx, proj, name)
}

// List returns every profile project proj sees, with its users.
func (s *Service) List(ctx context.Context, proj string) ([]api.Profile, error) {
	list := []api.Profile{}
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		owner, err := tx.ProfileProject(ctx, proj)
		if err != nil {
			return err
		}

		rows, err := tx.GetProjectProfiles(ctx, owner)
		if err != nil {
			return err
		}

		for i := range rows {
			p, err := toAPI(ctx, tx, &rows[i])
			if err != nil {
				return err
			}

			list = append(list, *p)
		}

		return nil
	})

	return list, err
}

// Get returns one profile of those project proj sees.
func (s *Service) Get(ctx context.Context, proj, name string) (*api.Profile, error) {
	var p *api.Profile
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		key, err := keyIn(ctx, tx, proj, name)
		if err != nil {
			return err
		}

		row, err := tx.GetProfile(ctx, key)
		if err != nil {
			return err
		}

		p, err = toAPI(ctx, tx, row)
		return err
	})

	return p, err
}

// Create validates and records a new profile in the profiles project proj sees.
func (s *Service) Create(ctx context.Context, proj string, req api.ProfilesPost) error {
	err := validate.EntityName("profile", req.Name)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	p := db.Profile{Name: req.Name, Description: req.Description, Config: api.NonNil(req.Config), Devices: api.NonNil(req.Devices)}
	err = s.instances.CheckNewProfile(&p)
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		q := p
		var err error
		q.Name, err = keyIn(ctx, tx, proj, p.Name)
		if err != nil {
			return err
		}

		_, err = tx.CreateProfile(ctx, q)
		return err
	})
	if err != nil {
		return err
	}

	s.emit("profile-created", url(p.Name), nil)
	return nil
}

// Replace is PUT: config, description and devices replaced. ifMatch is the request's
// If-Match header ("" skips the check).
func (s *Service) Replace(ctx context.Context, proj, name, ifMatch string, put api.ProfilePut) error {
	return s.update(ctx, proj, name, ifMatch, func(cur *db.Profile) db.Profile {
		return db.Profile{Name: cur.Name, Description: put.Description, Config: api.NonNil(put.Config), Devices: api.NonNil(put.Devices)}
	})
}

// Merge is PATCH: config and devices merged key by key, the rest kept unless given.
func (s *Service) Merge(ctx context.Context, proj, name, ifMatch string, patch Patch) error {
	return s.update(ctx, proj, name, ifMatch, func(cur *db.Profile) db.Profile {
		p := db.Profile{Name: cur.Name, Description: cur.Description, Config: maps.Clone(api.NonNil(cur.Config)), Devices: maps.Clone(api.NonNil(cur.Devices))}
		maps.Copy(p.Config, patch.Config)
		maps.Copy(p.Devices, patch.Devices)
		if patch.Description != nil {
			p.Description = *patch.Description
		}

		return p
	})
}

// update writes change(cur) and re-applies it to the running instances that use the
// profile; if that fails the old profile is put back everywhere rather than leave
// instances half-changed.
func (s *Service) update(ctx context.Context, proj, shown, ifMatch string, change func(cur *db.Profile) db.Profile) error {
	var cur *db.Profile
	var curAPI *api.Profile
	var name string // the profile's key
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		name, err = keyIn(ctx, tx, proj, shown)
		if err != nil {
			return err
		}

		cur, err = tx.GetProfile(ctx, name)
		if err != nil {
			return err
		}

		curAPI, err = toAPI(ctx, tx, cur)
		return err
	})
	if err != nil {
		return err
	}

	err = etag.Match(ifMatch, ETag(curAPI))
	if err != nil {
		return err
	}

	next := change(cur)
	err = s.instances.CheckProfile(ctx, name, &next)
	if err != nil {
		return err
	}

	write := func(p db.Profile) error {
		return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			return tx.UpdateProfile(ctx, name, p)
		})
	}

	err = write(next)
	if err != nil {
		return err
	}

	err = s.instances.ProfileChanged(ctx, name, cur)
	if err != nil {
		rerr := write(*cur)
		if rerr == nil {
			rerr = s.instances.ProfileChanged(context.Background(), name, &next)
		}

		return errors.Join(err, rerr)
	}

	s.emit("profile-updated", url(shown), nil)
	return nil
}

// Rename renames a profile; the default profile keeps its name (the database refuses).
func (s *Service) Rename(ctx context.Context, proj, name, newName string) error {
	err := validate.EntityName("profile", newName)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		key, err := keyIn(ctx, tx, proj, name)
		if err != nil {
			return err
		}

		newKey, err := keyIn(ctx, tx, proj, newName)
		if err != nil {
			return err
		}

		return tx.RenameProfile(ctx, key, newKey)
	})
	if err != nil {
		return err
	}

	s.emit("profile-renamed", url(newName), map[string]any{"old_name": name})
	return nil
}

// Delete removes a profile: refused for default (400) and while in use (409).
func (s *Service) Delete(ctx context.Context, proj, name string) error {
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		key, err := keyIn(ctx, tx, proj, name)
		if err != nil {
			return err
		}

		return tx.DeleteProfile(ctx, key)
	})
	if err != nil {
		return err
	}

	s.emit("profile-deleted", url(name), nil)
	return nil
}
