package imagestore

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// The image records as the API shows them. Handlers call these instead of running their
// own transactions, so the shape of an image and its aliases is decided here once.

// List returns every image, with its aliases, that keep says to keep.
func (s *Store) List(ctx context.Context, keep func(*api.Image) bool) ([]api.Image, error) {
	var list []api.Image
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetImages(ctx)
		if err != nil {
			return err
		}

		for i := range rows {
			img, err := imageToAPI(ctx, tx, &rows[i])
			if err != nil {
				return err
			}

			if keep == nil || keep(img) {
				list = append(list, *img)
			}
		}

		return nil
	})

	return list, err
}

// Get returns the image whose fingerprint is fp or starts with it (a unique prefix).
func (s *Store) Get(ctx context.Context, fp string) (*api.Image, error) {
	return s.get(ctx, fp, (*db.Tx).GetImage)
}

// GetPublic is Get among public images only, for untrusted callers: a private image
// is not found, and a prefix shared with private images is not ambiguous.
func (s *Store) GetPublic(ctx context.Context, fp string) (*api.Image, error) {
	return s.get(ctx, fp, (*db.Tx).GetPublicImage)
}

func (s *Store) get(ctx context.Context, fp string, lookup func(*db.Tx, context.Context, string) (*db.Image, error)) (*api.Image, error) {
	var img *api.Image
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		row, err := lookup(tx, ctx, fp)
		if err != nil {
			return err
		}

		img, err = imageToAPI(ctx, tx, row)
		return err
	})

	return img, err
}

// SetCached marks image fp as cached (pruned when unused for a while) or not (kept).
func (s *Store) SetCached(ctx context.Context, fp string, cached bool) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateImageCached(ctx, fp, cached)
	})
}

// Update replaces the image's editable fields.
func (s *Store) Update(ctx context.Context, fp string, put api.ImagePut) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetImage(ctx, fp)
		if err != nil {
			return err
		}

		row.Public, row.AutoUpdate, row.ExpiresAt = put.Public, put.AutoUpdate, put.ExpiresAt
		row.Properties = api.NonNil(put.Properties)

		return tx.UpdateImage(ctx, row.Fingerprint, *row)
	})
}

func imageToAPI(ctx context.Context, tx *db.Tx, row *db.Image) (*api.Image, error) {
	aliases, err := tx.GetImageAliasesFor(ctx, row.Fingerprint)
	if err != nil {
		return nil, err
	}

	img := &api.Image{
		ImagePut: api.ImagePut{
			AutoUpdate: row.AutoUpdate,
			Properties: api.NonNil(row.Properties),
			Public:     row.Public,
			ExpiresAt:  row.ExpiresAt,
			Profiles:   []string{"default"},
		},
		Aliases:      []api.ImageAlias{},
		Architecture: row.Architecture,
		Cached:       row.Cached,
		Filename:     row.Filename,
		Fingerprint:  row.Fingerprint,
		Size:         row.Size,
		Type:         row.Type,
		CreatedAt:    row.CreatedAt,
		LastUsedAt:   row.LastUsedAt,
		UploadedAt:   row.UploadedAt,
	}

	for _, a := range aliases {
		img.Aliases = append(img.Aliases, api.ImageAlias{Name: a.Name, Description: a.Description})
	}

	return img, nil
}
