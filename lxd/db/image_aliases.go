package db

import (
	"context"
	"fmt"
)

const aliasColumns = `a.id, a.name, a.description, i.fingerprint, a.type
FROM images_aliases a JOIN images i ON i.id = a.image_id`

const aliasesSelect = `SELECT ` + aliasColumns + ` ORDER BY a.name`

const aliasSelect = `SELECT ` + aliasColumns + ` WHERE a.name = ?`

const aliasesForImageSelect = `SELECT ` + aliasColumns + ` WHERE i.fingerprint = ? ORDER BY a.name`

// GetImageAliases returns all aliases sorted by name.
func (tx *Tx) GetImageAliases(ctx context.Context) ([]ImageAlias, error) {
	return tx.queryAliases(ctx, aliasesSelect)
}

// GetImageAlias returns one alias, or a 404 StatusError.
func (tx *Tx) GetImageAlias(ctx context.Context, name string) (*ImageAlias, error) {
	aliases, err := tx.queryAliases(ctx, aliasSelect, name)
	if err != nil {
		return nil, err
	}

	if len(aliases) == 0 {
		return nil, notFound("image alias", name)
	}

	return &aliases[0], nil
}

// GetImageAliasesFor returns the aliases pointing at the image with exactly that
// fingerprint (404 if there is no such image).
func (tx *Tx) GetImageAliasesFor(ctx context.Context, fingerprint string) ([]ImageAlias, error) {
	_, err := tx.imageID(ctx, fingerprint)
	if err != nil {
		return nil, err
	}

	return tx.queryAliases(ctx, aliasesForImageSelect, fingerprint)
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

const aliasInsert = `INSERT INTO images_aliases (name, image_id, description, type) VALUES (?, ?, ?, ?)`

// CreateImageAlias points a new alias at the image with exactly fingerprint:
// 404 if the image is missing, 409 if the alias exists.
func (tx *Tx) CreateImageAlias(ctx context.Context, name, fingerprint, description, typ string) error {
	imageID, err := tx.imageID(ctx, fingerprint)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, aliasInsert, name, imageID, description, typ)
	if isUnique(err) {
		return alreadyExists("image alias", name)
	}

	if err != nil {
		return fmt.Errorf("inserting image alias %q: %w", name, err)
	}

	return nil
}

const aliasUpdate = `UPDATE images_aliases SET image_id = ?, description = ? WHERE name = ?`

// UpdateImageAlias points the alias at another image and replaces its description.
func (tx *Tx) UpdateImageAlias(ctx context.Context, name, fingerprint, description string) error {
	imageID, err := tx.imageID(ctx, fingerprint)
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "image alias", name, aliasUpdate, imageID, description, name)
}

const aliasRename = `UPDATE images_aliases SET name = ? WHERE name = ?`

// RenameImageAlias renames an alias: 404 if old is missing, 409 if new is taken.
func (tx *Tx) RenameImageAlias(ctx context.Context, oldName, newName string) error {
	return tx.rename(ctx, "image alias", aliasRename, oldName, newName)
}

const aliasDelete = `DELETE FROM images_aliases WHERE name = ?`

// DeleteImageAlias deletes an alias; the image stays.
func (tx *Tx) DeleteImageAlias(ctx context.Context, name string) error {
	return tx.execOne(ctx, "image alias", name, aliasDelete, name)
}
