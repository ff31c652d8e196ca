// Package projects owns project records: their config (features, limits, restrictions)
// validated, written to the database, renamed and deleted only while nothing depends on
// them, and the checks an instance in a project must pass (limits.go, restrict.go).
// What a project's instances use is counted by the instance manager (Usage), which calls
// Check and CheckRestrictions when it creates or changes one.
package projects

import (
	"context"
	"maps"
	"net/http"
	neturl "net/url"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// Usage lists what each instance of the named project takes (instance.Manager's
// ProjectUsage), read in tx.
type Usage func(ctx context.Context, tx *db.Tx, proj string) ([]Use, error)

// Emit sends a lifecycle event ("project-created", its URL, extra context).
type Emit func(action, url string, ctx map[string]any)

// Service manages projects.
type Service struct {
	db    *db.DB
	usage Usage
	emit  Emit
}

// New returns the project service.
func New(d *db.DB, usage Usage, emit Emit) *Service {
	return &Service{db: d, usage: usage, emit: emit}
}

// Patch is a PATCH body: absent fields are kept, config merged key by key.
type Patch struct {
	Config      map[string]string `json:"config"`
	Description *string           `json:"description"`
}

// Project is LXD's api.Project.
type Project struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description" yaml:"description"`
	Config      map[string]string `json:"config" yaml:"config"`
	UsedBy      []string          `json:"used_by" yaml:"used_by"`
}

// State is LXD's api.ProjectState.
type State struct {
	Resources map[string]Resource `json:"resources" yaml:"resources"`
}

func url(name string) string { return "/1.0/projects/" + neturl.PathEscape(name) }

// ETag covers what LXD's does: description and config.
func ETag(p *Project) any {
	return []any{p.Description, p.Config}
}

// InstanceURL is the API URL of an instance key as LXD writes it: its name, and
// ?project= outside the default project.
func InstanceURL(key string) string {
	proj, name := project.Split(key)
	u := "/1.0/instances/" + neturl.PathEscape(name)
	if proj != project.Default {
		u += "?project=" + neturl.QueryEscape(proj)
	}

	return u
}

func toAPI(ctx context.Context, tx *db.Tx, p *db.Project) (*Project, error) {
	usage, err := tx.GetProjectUsage(ctx, p.Name)
	if err != nil {
		return nil, err
	}

	used := []string{}
	for _, key := range usage.InstanceKeys {
		used = append(used, InstanceURL(key))
	}

	if p.Name != project.Default {
		// Its own images (features.images), as LXD lists them.
		imgs, err := tx.GetProjectImages(ctx, p.Name)
		if err != nil {
			return nil, err
		}

		for _, img := range imgs {
			used = append(used, "/1.0/images/"+img.Fingerprint+"?project="+neturl.QueryEscape(p.Name))
		}
	}

	if p.Name == project.Default {
		// It owns every profile, image and network: LXD lists them; the instances are
		// what tells a reader the project is in use.
		used = append(used, "/1.0/profiles/default")
	}

	return &Project{Name: p.Name, Description: p.Description, Config: api.NonNil(p.Config), UsedBy: used}, nil
}

// List returns every project.
func (s *Service) List(ctx context.Context) ([]Project, error) {
	out := []Project{}
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetProjects(ctx)
		if err != nil {
			return err
		}

		for i := range rows {
			p, err := toAPI(ctx, tx, &rows[i])
			if err != nil {
				return err
			}

			out = append(out, *p)
		}

		return nil
	})

	return out, err
}

// Get returns one project, or a 404 naming it.
func (s *Service) Get(ctx context.Context, name string) (*Project, error) {
	var p *Project
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetProject(ctx, name)
		if err != nil {
			return err
		}

		p, err = toAPI(ctx, tx, row)
		return err
	})

	return p, err
}

// Config returns a project's config, or a 404 naming the project.
func (s *Service) Config(ctx context.Context, name string) (map[string]string, error) {
	var cfg map[string]string
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetProject(ctx, name)
		if err != nil {
			return err
		}

		cfg = row.Config
		return nil
	})

	return cfg, err
}

// Create validates and records a new project.
func (s *Service) Create(ctx context.Context, name, description string, config map[string]string) error {
	err := project.ValidateName(name)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	cfg := withNewDefaults(api.NonNil(config))
	err = ValidateConfig(cfg, false)
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := checkVolumeConfig(ctx, tx, name, nil, cfg)
		if err != nil {
			return err
		}

		_, err = tx.CreateProject(ctx, db.Project{Name: name, Description: description, Config: cfg})
		if err != nil {
			return err
		}

		if validate.IsTrue(cfg[featureProfiles]) {
			return createDefaultProfile(ctx, tx, name)
		}

		return nil
	})
	if err != nil {
		return err
	}

	s.emit("project-created", url(name), nil)
	return nil
}

// Replace is PUT: description and config replaced. ifMatch is the request's If-Match
// header ("" skips the check).
func (s *Service) Replace(ctx context.Context, name, ifMatch, description string, config map[string]string) error {
	return s.update(ctx, name, ifMatch, func(cur *db.Project) db.Project {
		return db.Project{Name: cur.Name, Description: description, Config: api.NonNil(config)}
	})
}

// Merge is PATCH: config merged key by key, description kept unless given.
func (s *Service) Merge(ctx context.Context, name, ifMatch string, patch Patch) error {
	return s.update(ctx, name, ifMatch, func(cur *db.Project) db.Project {
		p := db.Project{Name: cur.Name, Description: cur.Description, Config: maps.Clone(api.NonNil(cur.Config))}
		maps.Copy(p.Config, patch.Config)
		if patch.Description != nil {
			p.Description = *patch.Description
		}

		return p
	})
}

// update writes change(cur) after checking it: valid keys, and limits no lower than
// what the project's instances use now (a 400 naming the limit and the use). It reads,
// checks and writes in one transaction, so an instance created meanwhile is counted.
func (s *Service) update(ctx context.Context, name, ifMatch string, change func(cur *db.Project) db.Project) error {
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		cur, err := tx.GetProject(ctx, name)
		if err != nil {
			return err
		}

		curAPI, err := toAPI(ctx, tx, cur)
		if err != nil {
			return err
		}

		err = etag.Match(ifMatch, ETag(curAPI))
		if err != nil {
			return err
		}

		next := change(cur)
		isDefault := name == project.Default
		next.Config = withDefaults(next.Config, isDefault)

		err = ValidateConfig(next.Config, isDefault)
		if err != nil {
			return err
		}

		uses, err := s.usage(ctx, tx, name)
		if err != nil {
			return err
		}

		err = Check(name, next.Config, uses)
		if err != nil {
			return err
		}

		err = changeFeatures(ctx, tx, name, cur.Config, next.Config)
		if err == nil && !isDefault {
			err = checkVolumeConfig(ctx, tx, name, cur.Config, next.Config)
		}

		if err != nil {
			return err
		}

		return tx.UpdateProject(ctx, name, next)
	})
	if err != nil {
		return err
	}

	s.emit("project-updated", url(name), nil)
	return nil
}

// CheckRename refuses what Rename would refuse, without changing anything.
func (s *Service) CheckRename(ctx context.Context, name, newName string) error {
	return s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return checkRename(ctx, tx, name, newName)
	})
}

func checkRename(ctx context.Context, tx *db.Tx, name, newName string) error {
	err := project.ValidateName(newName)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	if name == project.Default {
		return api.StatusErrorf(http.StatusForbidden, "the default project cannot be renamed")
	}

	usage, err := tx.GetProjectUsage(ctx, name)
	if err != nil {
		return err
	}

	// Its own profiles move with it (their keys are renamed); instances and images
	// carry the name elsewhere.
	if usage.Instances+usage.Images > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "only empty projects can be renamed: %q has %d instances and %d images", name, usage.Instances, usage.Images)
	}

	err = checkNoVolumes(ctx, tx, name, "renamed")
	if err != nil {
		return err
	}

	_, err = tx.GetProject(ctx, newName)
	if err == nil {
		return api.StatusErrorf(http.StatusConflict, "project %q already exists", newName)
	}

	return nil
}

// Rename renames a project that has no instances (their keys and host names carry the
// project's name), as LXD refuses to rename a project that is in use.
func (s *Service) Rename(ctx context.Context, name, newName string) error {
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := checkRename(ctx, tx, name, newName)
		if err != nil {
			return err
		}

		err = tx.RenameProject(ctx, name, newName)
		if err != nil {
			return err
		}

		return tx.MoveProjectProfiles(ctx, name, newName)
	})
	if err != nil {
		return err
	}

	s.emit("project-renamed", url(newName), map[string]any{"old_name": name})
	return nil
}

// Delete removes an empty project: the default one never (403), one with instances
// never (400, naming how many).
func (s *Service) Delete(ctx context.Context, name string) error {
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := checkNoVolumes(ctx, tx, name, "deleted")
		if err == nil {
			err = dropDefaultProfile(ctx, tx, name)
		}

		if err != nil {
			return err
		}

		return tx.DeleteProject(ctx, name)
	})
	if err != nil {
		return err
	}

	s.emit("project-deleted", url(name), nil)
	return nil
}

// State is what the project's instances use against its limits.
func (s *Service) State(ctx context.Context, name string) (*State, error) {
	var st *State
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		p, err := tx.GetProject(ctx, name)
		if err != nil {
			return err
		}

		uses, err := s.usage(ctx, tx, name)
		if err != nil {
			return err
		}

		res, err := tally(p.Config, uses, false)
		if err != nil {
			return err
		}

		st = &State{Resources: res}
		return nil
	})

	return st, err
}
