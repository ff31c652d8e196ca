package imagestore

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// The image records as the API shows them. Handlers call these instead of running their
// own transactions, so the shape of an image and its aliases is decided here once.
//
// Every call names the request's project: its images are the project's own when it has
// features.images, the default project's otherwise (db.Tx.ImagesProject), resolved in
// the call's own transaction so that a feature change cannot fall between the two.

// List returns every image of project proj's image set, with its aliases, that keep
// says to keep.
func (s *Store) List(ctx context.Context, proj string, keep func(*api.Image) bool) ([]api.Image, error) {
	var list []api.Image
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		rows, err := tx.GetProjectImages(ctx, ip)
		if err != nil {
			return err
		}

		byProject, err := kept(ctx, tx, rows, keep)
		list = byProject[ip]
		return err
	})

	return list, err
}

// ListAll is List over every project's image set: the images keep says to keep, by the
// project that has them (for work across projects, such as pruning the cache).
func (s *Store) ListAll(ctx context.Context, keep func(*api.Image) bool) (map[string][]api.Image, error) {
	var out map[string][]api.Image
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetImages(ctx)
		if err != nil {
			return err
		}

		out, err = kept(ctx, tx, rows, keep)
		return err
	})

	return out, err
}

// kept renders the rows keep says to keep (all with a nil keep), by project.
func kept(ctx context.Context, tx *db.Tx, rows []db.Image, keep func(*api.Image) bool) (map[string][]api.Image, error) {
	out := map[string][]api.Image{}
	for i := range rows {
		img, err := imageToAPI(ctx, tx, &rows[i])
		if err != nil {
			return nil, err
		}

		if keep == nil || keep(img) {
			out[rows[i].Project] = append(out[rows[i].Project], *img)
		}
	}

	return out, nil
}

// ImagesProject returns the project whose images proj uses (itself with
// features.images, else the default project).
func (s *Store) ImagesProject(ctx context.Context, proj string) (string, error) {
	var ip string
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		ip, err = tx.ImagesProject(ctx, proj)
		return err
	})

	return ip, err
}

// Get returns project proj's image whose fingerprint is fp or starts with it (a unique
// prefix).
func (s *Store) Get(ctx context.Context, proj, fp string) (*api.Image, error) {
	return s.get(ctx, proj, fp, (*db.Tx).GetImage)
}

// GetPublic is Get among public images only, for untrusted callers: a private image
// is not found, and a prefix shared with private images is not ambiguous.
func (s *Store) GetPublic(ctx context.Context, proj, fp string) (*api.Image, error) {
	return s.get(ctx, proj, fp, (*db.Tx).GetPublicImage)
}

func (s *Store) get(ctx context.Context, proj, fp string, lookup func(*db.Tx, context.Context, string, string) (*db.Image, error)) (*api.Image, error) {
	var img *api.Image
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		row, err := lookup(tx, ctx, ip, fp)
		if err != nil {
			return err
		}

		img, err = imageToAPI(ctx, tx, row)
		return err
	})

	return img, err
}

// SetCached marks project proj's image fp as cached (pruned when unused for a while) or
// not (kept).
func (s *Store) SetCached(ctx context.Context, proj, fp string, cached bool) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		return tx.UpdateImageCached(ctx, ip, fp, cached)
	})
}

// Update replaces the editable fields of project proj's image.
func (s *Store) Update(ctx context.Context, proj, fp string, put api.ImagePut) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		row, err := tx.GetImage(ctx, ip, fp)
		if err != nil {
			return err
		}

		row.Public, row.AutoUpdate, row.ExpiresAt = put.Public, put.AutoUpdate, put.ExpiresAt
		row.Properties = api.NonNil(put.Properties)

		return tx.UpdateImage(ctx, ip, row.Fingerprint, *row)
	})
}

func imageToAPI(ctx context.Context, tx *db.Tx, row *db.Image) (*api.Image, error) {
	aliases, err := tx.GetImageAliasesFor(ctx, row.Project, row.Fingerprint)
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
