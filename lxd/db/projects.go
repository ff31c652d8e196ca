package db

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
)

// Project is one row of the projects table with its config.
type Project struct {
	ID          int64
	Name        string
	Description string
	Config      map[string]string // never nil
}

// DefaultProjectName is the project seeded by updateFromV7; it is never renamed or
// deleted.
const DefaultProjectName = "default"

const projectsSelect = `SELECT id, name, description FROM projects WHERE ? IS NULL OR name = ? ORDER BY name`

const projectsConfigSelect = `
SELECT c.project_id, c.key, c.value
FROM projects_config c JOIN projects p ON p.id = c.project_id
WHERE ? IS NULL OR p.name = ?`

// GetProjects returns every project sorted by name, with its config.
func (tx *Tx) GetProjects(ctx context.Context) ([]Project, error) {
	return tx.getProjects(ctx, nil)
}

// GetProject returns one project, or a 404 StatusError naming it.
func (tx *Tx) GetProject(ctx context.Context, name string) (*Project, error) {
	ps, err := tx.getProjects(ctx, &name)
	if err != nil {
		return nil, err
	}

	if len(ps) == 0 {
		return nil, notFound("project", name)
	}

	return &ps[0], nil
}

func (tx *Tx) getProjects(ctx context.Context, name *string) ([]Project, error) {
	rows, err := tx.tx.QueryContext(ctx, projectsSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("querying projects: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := []Project{}
	for rows.Next() {
		var p Project
		err := rows.Scan(&p.ID, &p.Name, &p.Description)
		if err != nil {
			return nil, fmt.Errorf("scanning project: %w", err)
		}

		out = append(out, p)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading projects: %w", err)
	}

	_ = rows.Close()
	config, err := tx.loadConfig(ctx, projectsConfigSelect, name, name)
	if err != nil {
		return nil, fmt.Errorf("loading project config: %w", err)
	}

	for i := range out {
		out[i].Config = orEmpty(config[out[i].ID])
	}

	return out, nil
}

const projectInsert = `INSERT INTO projects (name, description) VALUES (?, ?)`

const projectConfigInsert = `INSERT INTO projects_config (project_id, key, value) VALUES (?, ?, ?)`

// CreateProject inserts a project with its config: 409 if the name is taken.
func (tx *Tx) CreateProject(ctx context.Context, p Project) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, projectInsert, p.Name, p.Description)
	if isUnique(err) {
		return 0, alreadyExists("project", p.Name)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting project %q: %w", p.Name, err)
	}

	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("inserting project %q: %w", p.Name, err)
	}

	err = tx.insertConfig(ctx, projectConfigInsert, id, p.Config)
	if err != nil {
		return 0, fmt.Errorf("inserting project %q: %w", p.Name, err)
	}

	return id, nil
}

const projectIDSelect = `SELECT id FROM projects WHERE name = ?`

// UpdateProject replaces the description and config of a project.
func (tx *Tx) UpdateProject(ctx context.Context, name string, p Project) error {
	id, err := tx.lookupID(ctx, projectIDSelect, "project", name)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, `UPDATE projects SET description = ? WHERE id = ?`, p.Description, id)
	if err != nil {
		return fmt.Errorf("updating project %q: %w", name, err)
	}

	_, err = tx.tx.ExecContext(ctx, `DELETE FROM projects_config WHERE project_id = ?`, id)
	if err != nil {
		return fmt.Errorf("updating project %q: %w", name, err)
	}

	err = tx.insertConfig(ctx, projectConfigInsert, id, p.Config)
	if err != nil {
		return fmt.Errorf("updating project %q: %w", name, err)
	}

	return nil
}

// RenameProject renames a project: 404 if old is missing, 409 if new is taken. The
// caller refuses it while the project has instances (their keys name the project).
func (tx *Tx) RenameProject(ctx context.Context, oldName, newName string) error {
	if oldName == DefaultProjectName {
		return api.StatusErrorf(http.StatusForbidden, "the default project cannot be renamed")
	}

	return tx.rename(ctx, "project", `UPDATE projects SET name = ? WHERE name = ?`, oldName, newName)
}

// DeleteProject deletes an empty project (the caller checks ProjectUsage first): a
// project that still owns a row is refused with 400 in the same transaction.
func (tx *Tx) DeleteProject(ctx context.Context, name string) error {
	if name == DefaultProjectName {
		return api.StatusErrorf(http.StatusForbidden, "the default project cannot be deleted")
	}

	id, err := tx.lookupID(ctx, projectIDSelect, "project", name)
	if err != nil {
		return err
	}

	usage, err := tx.projectUsage(ctx, id)
	if err != nil {
		return err
	}

	if usage.Instances+usage.Profiles+usage.Images > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "project %q is not empty (%d instances, %d profiles, %d images)",
			name, usage.Instances, usage.Profiles, usage.Images)
	}

	return tx.execOne(ctx, "project", name, `DELETE FROM projects WHERE id = ?`, id)
}

// ProjectUsage counts what a project owns.
type ProjectUsage struct {
	Instances int64
	Profiles  int64
	Images    int64
	// InstanceKeys are the keys of its instances, sorted.
	InstanceKeys []string
}

// GetProjectUsage counts what the named project owns: 404 if it does not exist.
func (tx *Tx) GetProjectUsage(ctx context.Context, name string) (*ProjectUsage, error) {
	id, err := tx.lookupID(ctx, projectIDSelect, "project", name)
	if err != nil {
		return nil, err
	}

	return tx.projectUsage(ctx, id)
}

func (tx *Tx) projectUsage(ctx context.Context, id int64) (*ProjectUsage, error) {
	u := &ProjectUsage{InstanceKeys: []string{}}
	counts := []struct {
		query string
		into  *int64
	}{
		{`SELECT COUNT(*) FROM profiles WHERE project_id = ?`, &u.Profiles},
		{`SELECT COUNT(*) FROM images WHERE project_id = ?`, &u.Images},
	}

	for _, c := range counts {
		err := tx.tx.QueryRowContext(ctx, c.query, id).Scan(c.into)
		if err != nil {
			return nil, fmt.Errorf("counting what project %d owns: %w", id, err)
		}
	}

	rows, err := tx.tx.QueryContext(ctx, `SELECT name FROM instances WHERE project_id = ? ORDER BY name`, id)
	if err != nil {
		return nil, fmt.Errorf("listing instances of project %d: %w", id, err)
	}

	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var key string
		err := rows.Scan(&key)
		if err != nil {
			return nil, fmt.Errorf("scanning instance of project %d: %w", id, err)
		}

		u.InstanceKeys = append(u.InstanceKeys, key)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading instances of project %d: %w", id, err)
	}

	u.Instances = int64(len(u.InstanceKeys))
	return u, nil
}
