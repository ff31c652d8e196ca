package db

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

const imageColumns = `id, fingerprint, filename, size, architecture, type, public, auto_update, cached,
creation_date, expiry_date, upload_date, last_use_date`

const imagesSelect = `SELECT ` + imageColumns + ` FROM images ORDER BY fingerprint`

const imageSelectExact = `SELECT ` + imageColumns + ` FROM images WHERE fingerprint = ?`

// imageSelectPrefix stops at two rows: enough to tell unique from ambiguous.
// substr rather than LIKE, so '%' and '_' in user input match only themselves.
const imageSelectPrefix = `SELECT ` + imageColumns + `
FROM images WHERE substr(fingerprint, 1, length(?1)) = ?1 ORDER BY fingerprint LIMIT 2`

// The same among public images only: what an untrusted caller may name.
const (
	publicImageSelectExact  = `SELECT ` + imageColumns + ` FROM images WHERE fingerprint = ? AND public = 1`
	publicImageSelectPrefix = `SELECT ` + imageColumns + `
FROM images WHERE substr(fingerprint, 1, length(?1)) = ?1 AND public = 1 ORDER BY fingerprint LIMIT 2`
)

const imagesPropertiesSelect = `
SELECT image_id, key, value FROM images_properties WHERE ?1 = 0 OR image_id = ?1`

// GetImages returns all images sorted by fingerprint, with properties.
func (tx *Tx) GetImages(ctx context.Context) ([]Image, error) {
	images, err := tx.queryImages(ctx, imagesSelect)
	if err != nil {
		return nil, err
	}

	err = tx.loadImageProperties(ctx, images, 0)
	if err != nil {
		return nil, err
	}

	return images, nil
}

// GetImage returns the image whose fingerprint is fingerprintOrPrefix or, failing
// that, the one image it is a prefix of: 404 for none, 400 if ambiguous.
func (tx *Tx) GetImage(ctx context.Context, fingerprintOrPrefix string) (*Image, error) {
	return tx.getImage(ctx, fingerprintOrPrefix, imageSelectExact, imageSelectPrefix)
}

// GetPublicImage is GetImage among public images only: private images neither match
// nor make a prefix ambiguous, so their existence does not show.
func (tx *Tx) GetPublicImage(ctx context.Context, fingerprintOrPrefix string) (*Image, error) {
	return tx.getImage(ctx, fingerprintOrPrefix, publicImageSelectExact, publicImageSelectPrefix)
}

func (tx *Tx) getImage(ctx context.Context, fingerprintOrPrefix, exact, prefix string) (*Image, error) {
	if fingerprintOrPrefix == "" {
		return nil, notFound("image", fingerprintOrPrefix)
	}

	images, err := tx.queryImages(ctx, exact, fingerprintOrPrefix)
	if err != nil {
		return nil, err
	}

	if len(images) == 0 {
		images, err = tx.queryImages(ctx, prefix, fingerprintOrPrefix)
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
		err := rows.Scan(&img.ID, &img.Fingerprint, &img.Filename, &img.Size, &img.Architecture, &img.Type,
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

const imageIDSelect = `SELECT id FROM images WHERE fingerprint = ?`

// imageID returns the id of the image with exactly that fingerprint, or a 404.
func (tx *Tx) imageID(ctx context.Context, fingerprint string) (int64, error) {
	return tx.lookupID(ctx, imageIDSelect, "image", fingerprint)
}

const imageInsert = `
INSERT INTO images (fingerprint, filename, size, architecture, type, public, auto_update, cached,
    creation_date, expiry_date, upload_date, last_use_date)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const imagePropertyInsert = `INSERT INTO images_properties (image_id, key, value) VALUES (?, ?, ?)`

// CreateImage inserts an image with its properties and returns its id (409 if the
// fingerprint is known).
func (tx *Tx) CreateImage(ctx context.Context, img Image) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, imageInsert, img.Fingerprint, img.Filename, img.Size, img.Architecture,
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

// UpdateImage replaces public, auto_update, expiry date and properties of the image
// with exactly that fingerprint.
func (tx *Tx) UpdateImage(ctx context.Context, fingerprint string, img Image) error {
	id, err := tx.imageID(ctx, fingerprint)
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

const imageLastUsedUpdate = `UPDATE images SET last_use_date = ? WHERE fingerprint = ?`

// UpdateImageLastUsed records when the image was last used to create an instance.
func (tx *Tx) UpdateImageLastUsed(ctx context.Context, fingerprint string, t time.Time) error {
	return tx.execOne(ctx, "image", fingerprint, imageLastUsedUpdate, timeToDB(t), fingerprint)
}

const imageDelete = `DELETE FROM images WHERE fingerprint = ?`

// DeleteImage deletes the image with exactly that fingerprint; its properties and
// aliases go with it.
func (tx *Tx) DeleteImage(ctx context.Context, fingerprint string) error {
	return tx.execOne(ctx, "image", fingerprint, imageDelete, fingerprint)
}
