package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

// Images are per project: every method below takes the project whose image set it works
// on, which is the request's project if it has features.images and the default project
// otherwise (ImagesProject). A fingerprint is unique within a project only; the files
// behind it are shared (lxd/imagestore keeps them while any project's row names them).

const imageColumns = `i.id, p.name, i.fingerprint, i.filename, i.size, i.architecture, i.type, i.public,
i.auto_update, i.cached, i.creation_date, i.expiry_date, i.upload_date, i.last_use_date
FROM images i JOIN projects p ON p.id = i.project_id`

// inProject restricts a query on images i to the project named by the first argument.
const inProject = `p.name = ?1`

const imagesSelect = `SELECT ` + imageColumns + ` WHERE ` + inProject + ` ORDER BY i.fingerprint`

const allImagesSelect = `SELECT ` + imageColumns + ` ORDER BY p.name, i.fingerprint`

const imageSelectExact = `SELECT ` + imageColumns + ` WHERE ` + inProject + ` AND i.fingerprint = ?2`

// imageSelectPrefix stops at two rows: enough to tell unique from ambiguous.
// substr rather than LIKE, so '%' and '_' in user input match only themselves.
const imageSelectPrefix = `SELECT ` + imageColumns + `
WHERE ` + inProject + ` AND substr(i.fingerprint, 1, length(?2)) = ?2 ORDER BY i.fingerprint LIMIT 2`

// The same among public images only: what an untrusted caller may name.
const (
	publicImageSelectExact  = `SELECT ` + imageColumns + ` WHERE ` + inProject + ` AND i.fingerprint = ?2 AND i.public = 1`
	publicImageSelectPrefix = `SELECT ` + imageColumns + `
WHERE ` + inProject + ` AND substr(i.fingerprint, 1, length(?2)) = ?2 AND i.public = 1 ORDER BY i.fingerprint LIMIT 2`
)

const imagesPropertiesSelect = `
SELECT image_id, key, value FROM images_properties WHERE ?1 = 0 OR image_id = ?1`

// ImagesProject returns the project whose images proj uses: proj itself when it has
// features.images, the default project otherwise (404 for an unknown project).
func (tx *Tx) ImagesProject(ctx context.Context, proj string) (string, error) {
	if proj == "" || proj == DefaultProjectName {
		return DefaultProjectName, nil
	}

	p, err := tx.GetProject(ctx, proj)
	if err != nil {
		return "", err
	}

	if validate.IsTrue(p.Config["features.images"]) {
		return p.Name, nil
	}

	return DefaultProjectName, nil
}

// GetImages returns every project's images sorted by project and fingerprint, with
// properties.
func (tx *Tx) GetImages(ctx context.Context) ([]Image, error) {
	return tx.imagesWithProperties(ctx, allImagesSelect)
}

// GetProjectImages returns the images of project proj sorted by fingerprint, with
// properties.
func (tx *Tx) GetProjectImages(ctx context.Context, proj string) ([]Image, error) {
	return tx.imagesWithProperties(ctx, imagesSelect, proj)
}

func (tx *Tx) imagesWithProperties(ctx context.Context, query string, args ...any) ([]Image, error) {
	images, err := tx.queryImages(ctx, query, args...)
	if err != nil {
		return nil, err
	}

	err = tx.loadImageProperties(ctx, images, 0)
	if err != nil {
		return nil, err
	}

	return images, nil
}

// ImageInUse reports whether any project has a row for exactly fingerprint fp: its
// files are kept while one does.
func (tx *Tx) ImageInUse(ctx context.Context, fp string) (bool, error) {
	var n int64
	err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM images WHERE fingerprint = ?`, fp).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("counting rows of image %q: %w", fp, err)
	}

	return n > 0, nil
}

// GetImage returns project proj's image whose fingerprint is fingerprintOrPrefix or,
// failing that, the one image it is a prefix of: 404 for none, 400 if ambiguous.
func (tx *Tx) GetImage(ctx context.Context, proj, fingerprintOrPrefix string) (*Image, error) {
	return tx.getImage(ctx, proj, fingerprintOrPrefix, imageSelectExact, imageSelectPrefix)
}

// GetPublicImage is GetImage among public images only: private images neither match
// nor make a prefix ambiguous, so their existence does not show.
func (tx *Tx) GetPublicImage(ctx context.Context, proj, fingerprintOrPrefix string) (*Image, error) {
	return tx.getImage(ctx, proj, fingerprintOrPrefix, publicImageSelectExact, publicImageSelectPrefix)
}

func (tx *Tx) getImage(ctx context.Context, proj, fingerprintOrPrefix, exact, prefix string) (*Image, error) {
	if fingerprintOrPrefix == "" {
		return nil, notFound("image", fingerprintOrPrefix)
	}

	images, err := tx.queryImages(ctx, exact, proj, fingerprintOrPrefix)
	if err != nil {
		return nil, err
	}

	if len(images) == 0 {
		images, err = tx.queryImages(ctx, prefix, proj, fingerprintOrPrefix)
		if err != nil {
			return nil, err
		}
	}

	switch len(images) {
	case 0:
		return nil, notFound("image", fingerprintOrPrefix)
	case 1:
	default:
		return nil, api.StatusErrorf(http.StatusBadRequest, "image prefix %q is ambiguous", fingerprintOrPrefix)
	}

	err = tx.loadImageProperties(ctx, images, images[0].ID)
	if err != nil {
		return nil, err
	}

	return &images[0], nil
}

func (tx *Tx) queryImages(ctx context.Context, query string, args ...any) ([]Image, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying images: %w", err)
	}

	defer func() { _ = rows.Close() }()

	images := []Image{}
	for rows.Next() {
		var img Image
		err := rows.Scan(&img.ID, &img.Project, &img.Fingerprint, &img.Filename, &img.Size, &img.Architecture, &img.Type,
			&img.Public, &img.AutoUpdate, &img.Cached, dbTime{&img.CreatedAt}, dbTime{&img.ExpiresAt},
			dbTime{&img.UploadedAt}, dbTime{&img.LastUsedAt})
		if err != nil {
			return nil, fmt.Errorf("scanning image: %w", err)
		}

		images = append(images, img)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading images: %w", err)
	}

	return images, nil
}

// loadImageProperties fills Properties for images; id 0 loads every image's.
func (tx *Tx) loadImageProperties(ctx context.Context, images []Image, id int64) error {
	props, err := tx.loadConfig(ctx, imagesPropertiesSelect, id)
	if err != nil {
		return fmt.Errorf("loading image properties: %w", err)
	}

	for i := range images {
		images[i].Properties = orEmpty(props[images[i].ID])
	}

	return nil
}

const imageIDSelect = `SELECT i.id FROM images i JOIN projects p ON p.id = i.project_id WHERE p.name = ? AND i.fingerprint = ?`

// imageID returns the id of project proj's image with exactly that fingerprint, or a 404.
func (tx *Tx) imageID(ctx context.Context, proj, fingerprint string) (int64, error) {
	var id int64
	err := tx.tx.QueryRowContext(ctx, imageIDSelect, proj, fingerprint).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("image", fingerprint)
	}

	if err != nil {
		return 0, fmt.Errorf("looking up image %q: %w", fingerprint, err)
	}

	return id, nil
}

const imageInsert = `
INSERT INTO images (project_id, fingerprint, filename, size, architecture, type, public, auto_update, cached,
    creation_date, expiry_date, upload_date, last_use_date)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const imagePropertyInsert = `INSERT INTO images_properties (image_id, key, value) VALUES (?, ?, ?)`

// CreateImage inserts an image of project img.Project (the default one if empty) with
// its properties and returns its id (409 if the project has the fingerprint, 404 if
// there is no such project).
func (tx *Tx) CreateImage(ctx context.Context, img Image) (int64, error) {
	proj := img.Project
	if proj == "" {
		proj = DefaultProjectName
	}

	projectID, err := tx.lookupID(ctx, projectIDSelect, "project", proj)
	if err != nil {
		return 0, err
	}

	res, err := tx.tx.ExecContext(ctx, imageInsert, projectID, img.Fingerprint, img.Filename, img.Size, img.Architecture,
		img.Type, img.Public, img.AutoUpdate, img.Cached, timeToDB(img.CreatedAt), timeToDB(img.ExpiresAt),
		timeToDB(img.UploadedAt), timeToDB(img.LastUsedAt))
	if isUnique(err) {
		return 0, alreadyExists("image", img.Fingerprint)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting image %q: %w", img.Fingerprint, err)
	}

	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("inserting image %q: %w", img.Fingerprint, err)
	}

	err = tx.insertConfig(ctx, imagePropertyInsert, id, img.Properties)
	if err != nil {
		return 0, fmt.Errorf("inserting image %q: %w", img.Fingerprint, err)
	}

	return id, nil
}

const imageUpdate = `UPDATE images SET public = ?, auto_update = ?, expiry_date = ? WHERE id = ?`

const imagePropertiesDelete = `DELETE FROM images_properties WHERE image_id = ?`

// UpdateImage replaces public, auto_update, expiry date and properties of project proj's
// image with exactly that fingerprint.
func (tx *Tx) UpdateImage(ctx context.Context, proj, fingerprint string, img Image) error {
	id, err := tx.imageID(ctx, proj, fingerprint)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, imageUpdate, img.Public, img.AutoUpdate, timeToDB(img.ExpiresAt), id)
	if err != nil {
		return fmt.Errorf("updating image %q: %w", fingerprint, err)
	}

	_, err = tx.tx.ExecContext(ctx, imagePropertiesDelete, id)
	if err != nil {
		return fmt.Errorf("clearing properties of image %q: %w", fingerprint, err)
	}

	err = tx.insertConfig(ctx, imagePropertyInsert, id, img.Properties)
	if err != nil {
		return fmt.Errorf("updating image %q: %w", fingerprint, err)
	}

	return nil
}

const imageLastUsedUpdate = `
UPDATE images SET last_use_date = ?1
WHERE fingerprint = ?2 AND project_id = (SELECT id FROM projects WHERE name = ?3)`

// UpdateImageLastUsed records when project proj's image was last used to create an
// instance.
func (tx *Tx) UpdateImageLastUsed(ctx context.Context, proj, fingerprint string, t time.Time) error {
	return tx.execOne(ctx, "image", fingerprint, imageLastUsedUpdate, timeToDB(t), fingerprint, proj)
}

const imageDelete = `DELETE FROM images WHERE fingerprint = ?1 AND project_id = (SELECT id FROM projects WHERE name = ?2)`

// DeleteImage deletes project proj's image with exactly that fingerprint; its
// properties and aliases go with it. Other projects' rows of the fingerprint stay.
func (tx *Tx) DeleteImage(ctx context.Context, proj, fingerprint string) error {
	return tx.execOne(ctx, "image", fingerprint, imageDelete, fingerprint, proj)
}
