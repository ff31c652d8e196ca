package imagestore

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// Aliases returns every image alias.
func (s *Store) Aliases(ctx context.Context) ([]api.ImageAliasesEntry, error) {
	var list []db.ImageAlias
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		list, err = tx.GetImageAliases(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := make([]api.ImageAliasesEntry, 0, len(list))
	for _, a := range list {
		out = append(out, aliasToAPI(a))
	}

	return out, nil
}

// Alias returns one alias by name.
func (s *Store) Alias(ctx context.Context, name string) (*api.ImageAliasesEntry, error) {
	var a *db.ImageAlias
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		a, err = tx.GetImageAlias(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := aliasToAPI(*a)
	return &out, nil
}

// AddAliases points new aliases at the image whose fingerprint is target or starts with
// it, all or none. typ is the alias's instance type ("" for container).
func (s *Store) AddAliases(ctx context.Context, target, typ string, aliases ...api.ImageAlias) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		img, err := tx.GetImage(ctx, target)
		if err != nil {
			return err
		}

		for _, a := range aliases {
			err := tx.CreateImageAlias(ctx, a.Name, img.Fingerprint, a.Description, typ)
			if err != nil {
				return err
			}
		}

		return nil
	})
}

// UpdateAlias points an alias at another image (a fingerprint or unique prefix) and sets
// its description.
func (s *Store) UpdateAlias(ctx context.Context, name string, put api.ImageAliasesEntryPut) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		img, err := tx.GetImage(ctx, put.Target)
		if err != nil {
			return err
		}

		return tx.UpdateImageAlias(ctx, name, img.Fingerprint, put.Description)
	})
}

// RenameAlias renames an alias.
func (s *Store) RenameAlias(ctx context.Context, name, newName string) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameImageAlias(ctx, name, newName)
	})
}

// DeleteAlias removes an alias.
func (s *Store) DeleteAlias(ctx context.Context, name string) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteImageAlias(ctx, name)
	})
}

func aliasToAPI(a db.ImageAlias) api.ImageAliasesEntry {
	typ := a.Type
	if typ == "" {
		typ = api.InstanceTypeContainer
	}

	return api.ImageAliasesEntry{
		ImageAliasesEntryPut: api.ImageAliasesEntryPut{Description: a.Description, Target: a.Fingerprint},
		Name:                 a.Name,
		Type:                 typ,
	}
}
