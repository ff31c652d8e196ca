package imagestore

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// Aliases live in the image set of the request's project, as images do (catalog.go).

// Aliases returns every image alias of project proj's image set.
func (s *Store) Aliases(ctx context.Context, proj string) ([]api.ImageAliasesEntry, error) {
	var list []db.ImageAlias
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		list, err = tx.GetImageAliases(ctx, ip)
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

// Alias returns one alias of project proj's image set by name.
func (s *Store) Alias(ctx context.Context, proj, name string) (*api.ImageAliasesEntry, error) {
	var a *db.ImageAlias
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		a, err = tx.GetImageAlias(ctx, ip, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := aliasToAPI(*a)
	return &out, nil
}

// AddAliases points new aliases at project proj's image whose fingerprint is target or starts with
// it, all or none. typ is the alias's instance type ("" for container).
func (s *Store) AddAliases(ctx context.Context, proj, target, typ string, aliases ...api.ImageAlias) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		img, err := tx.GetImage(ctx, ip, target)
		if err != nil {
			return err
		}

		for _, a := range aliases {
			err := tx.CreateImageAlias(ctx, ip, a.Name, img.Fingerprint, a.Description, typ)
			if err != nil {
				return err
			}
		}

		return nil
	})
}

// UpdateAlias points an alias at another image (a fingerprint or unique prefix) and sets
// its description.
func (s *Store) UpdateAlias(ctx context.Context, proj, name string, put api.ImageAliasesEntryPut) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		img, err := tx.GetImage(ctx, ip, put.Target)
		if err != nil {
			return err
		}

		return tx.UpdateImageAlias(ctx, ip, name, img.Fingerprint, put.Description)
	})
}

// RenameAlias renames an alias.
func (s *Store) RenameAlias(ctx context.Context, proj, name, newName string) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		return tx.RenameImageAlias(ctx, ip, name, newName)
	})
}

// DeleteAlias removes an alias.
func (s *Store) DeleteAlias(ctx context.Context, proj, name string) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		return tx.DeleteImageAlias(ctx, ip, name)
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
