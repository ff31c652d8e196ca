package db

import (
	"context"
	"fmt"
)

// Aliases are per project like images (see images.go): proj is the project whose image
// set the alias lives in, and an alias points only at an image of the same project.

const aliasColumns = `a.id, a.name, a.description, i.fingerprint, a.type
FROM images_aliases a JOIN images i ON i.id = a.image_id JOIN projects p ON p.id = a.project_id`

const aliasesSelect = `SELECT ` + aliasColumns + ` WHERE p.name = ?1 ORDER BY a.name`

const aliasSelect = `SELECT ` + aliasColumns + ` WHERE p.name = ?1 AND a.name = ?2`

const aliasesForImageSelect = `SELECT ` + aliasColumns + ` WHERE p.name = ?1 AND i.fingerprint = ?2 ORDER BY a.name`

// GetImageAliases returns project proj's aliases sorted by name.
func (tx *Tx) GetImageAliases(ctx context.Context, proj string) ([]ImageAlias, error) {
	return tx.queryAliases(ctx, aliasesSelect, proj)
}

// GetImageAlias returns one alias of project proj, or a 404 StatusError.
func (tx *Tx) GetImageAlias(ctx context.Context, proj, name string) (*ImageAlias, error) {
	aliases, err := tx.queryAliases(ctx, aliasSelect, proj, name)
	if err != nil {
		return nil, err
	}

	if len(aliases) == 0 {
		return nil, notFound("image alias", name)
	}

	return &aliases[0], nil
}

// GetImageAliasesFor returns the aliases pointing at project proj's image with exactly
// that fingerprint (404 if the project has no such image).
func (tx *Tx) GetImageAliasesFor(ctx context.Context, proj, fingerprint string) ([]ImageAlias, error) {
	_, err := tx.imageID(ctx, proj, fingerprint)
	if err != nil {
		return nil, err
	}

	return tx.queryAliases(ctx, aliasesForImageSelect, proj, fingerprint)
}

func (tx *Tx) queryAliases(ctx context.Context, query string, args ...any) ([]ImageAlias, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying image aliases: %w", err)
	}

	defer func() { _ = rows.Close() }()

	aliases := []ImageAlias{}
	for rows.Next() {
		var a ImageAlias
		err := rows.Scan(&a.ID, &a.Name, &a.Description, &a.Fingerprint, &a.Type)
		if err != nil {
			return nil, fmt.Errorf("scanning image alias: %w", err)
		}

		aliases = append(aliases, a)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading image aliases: %w", err)
	}

	return aliases, nil
}

const aliasInsert = `
INSERT INTO images_aliases (project_id, name, image_id, description, type)
SELECT project_id, ?, id, ?, ? FROM images WHERE id = ?`

// CreateImageAlias points a new alias of project proj at its image with exactly
// fingerprint: 404 if the image is missing, 409 if the alias exists.
func (tx *Tx) CreateImageAlias(ctx context.Context, proj, name, fingerprint, description, typ string) error {
	imageID, err := tx.imageID(ctx, proj, fingerprint)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, aliasInsert, name, description, typ, imageID)
	if isUnique(err) {
		return alreadyExists("image alias", name)
	}

	if err != nil {
		return fmt.Errorf("inserting image alias %q: %w", name, err)
	}

	return nil
}

// inAliasProject restricts an alias statement to the project named by its last argument.
const inAliasProject = ` AND project_id = (SELECT id FROM projects WHERE name = ?)`

const aliasUpdate = `UPDATE images_aliases SET image_id = ?, description = ? WHERE name = ?` + inAliasProject

// UpdateImageAlias points project proj's alias at another of its images and replaces
// its description.
func (tx *Tx) UpdateImageAlias(ctx context.Context, proj, name, fingerprint, description string) error {
	imageID, err := tx.imageID(ctx, proj, fingerprint)
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "image alias", name, aliasUpdate, imageID, description, name, proj)
}

const aliasRename = `UPDATE images_aliases SET name = ? WHERE name = ?` + inAliasProject

// RenameImageAlias renames an alias of project proj: 404 if old is missing, 409 if new
// is taken in the project.
func (tx *Tx) RenameImageAlias(ctx context.Context, proj, oldName, newName string) error {
	res, err := tx.tx.ExecContext(ctx, aliasRename, newName, oldName, proj)
	if isUnique(err) {
		return alreadyExists("image alias", newName)
	}

	if err != nil {
		return fmt.Errorf("renaming image alias %q to %q: %w", oldName, newName, err)
	}

	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("renaming image alias %q to %q: %w", oldName, newName, err)
	}

	if n == 0 {
		return notFound("image alias", oldName)
	}

	return nil
}

const aliasDelete = `DELETE FROM images_aliases WHERE name = ?` + inAliasProject

// DeleteImageAlias deletes an alias of project proj; the image stays.
func (tx *Tx) DeleteImageAlias(ctx context.Context, proj, name string) error {
	return tx.execOne(ctx, "image alias", name, aliasDelete, name, proj)
}
