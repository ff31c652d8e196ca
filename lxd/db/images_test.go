package db

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

func sampleImage(fp string) Image {
	return Image{
		Fingerprint:  fp,
		Project:      "default",
		Filename:     "debian-12.tar.xz",
		Size:         123456789,
		Architecture: "x86_64",
		Type:         "container",
		Public:       true,
		AutoUpdate:   true,
		Cached:       true,
		CreatedAt:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		UploadedAt:   time.Date(2024, 1, 2, 0, 0, 0, 5, time.UTC),
		Properties:   map[string]string{"os": "debian", "release": "bookworm"},
	}
}

func fingerprint(prefix string) string {
	return prefix + strings.Repeat("0", 64-len(prefix))
}

func TestImageRoundTrip(t *testing.T) {
	db := newTestDB(t)
	want := sampleImage(fingerprint("abc"))

	write(t, db, func(ctx context.Context, tx *Tx) error {
		id, err := tx.CreateImage(ctx, want)
		want.ID = id

		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetImage(ctx, "default", want.Fingerprint)
		if err != nil {
			return err
		}

		if !reflect.DeepEqual(*got, want) {
			t.Errorf("GetImage =\n%+v\nwant\n%+v", *got, want)
		}

		all, err := tx.GetImages(ctx)
		if err != nil {
			return err
		}

		if len(all) != 1 || !reflect.DeepEqual(all[0], want) {
			t.Errorf("GetImages = %+v", all)
		}

		return nil
	})

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateImage(ctx, sampleImage(want.Fingerprint))
		return err
	})
	wantStatus(t, err, http.StatusConflict)
}

func TestGetImagePrefix(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for _, p := range []string{"abc1", "abc2", "def"} {
			_, err := tx.CreateImage(ctx, sampleImage(fingerprint(p)))
			if err != nil {
				return err
			}
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetImage(ctx, "default", "abc1")
		if err != nil {
			return err
		}

		if got.Fingerprint != fingerprint("abc1") || got.Properties["os"] != "debian" {
			t.Errorf("GetImage(abc1) = %+v", got)
		}

		_, err = tx.GetImage(ctx, "default", "abc")
		wantStatus(t, err, http.StatusBadRequest)

		if err.Error() != `image prefix "abc" is ambiguous` {
			t.Errorf("ambiguous message = %q", err.Error())
		}

		for _, missing := range []string{"ff", "", "%", "_bc"} {
			_, err = tx.GetImage(ctx, "default", missing)
			wantStatus(t, err, http.StatusNotFound)
		}

		return nil
	})
}

func TestUpdateAndDeleteImage(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	fp := fingerprint("a")
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	used := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateImage(ctx, sampleImage(fp))
		if err != nil {
			return err
		}

		err = tx.UpdateImage(ctx, "default", fp, Image{
			Filename:   "ignored",
			Public:     false,
			AutoUpdate: false,
			ExpiresAt:  expires,
			Properties: map[string]string{"os": "ubuntu"},
		})
		if err != nil {
			return err
		}

		return tx.UpdateImageLastUsed(ctx, "default", fp, used)
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetImage(ctx, "default", fp)
		if err != nil {
			return err
		}

		if got.Public || got.AutoUpdate || !got.ExpiresAt.Equal(expires) || !got.LastUsedAt.Equal(used) ||
			got.Filename != "debian-12.tar.xz" || !got.Cached ||
			!reflect.DeepEqual(got.Properties, map[string]string{"os": "ubuntu"}) {
			t.Errorf("after update = %+v", got)
		}

		return nil
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.UpdateImage(ctx, "default", "nope", Image{})
	})
	wantStatus(t, err, http.StatusNotFound)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.CreateImageAlias(ctx, "default", "debian", fp, "", "container")
		if err != nil {
			return err
		}

		return tx.DeleteImage(ctx, "default", fp)
	})

	// Properties and aliases went with the image.
	for _, table := range []string{"images", "images_properties", "images_aliases"} {
		var n int
		err := db.read.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}

		if n != 0 {
			t.Errorf("%d rows left in %s", n, table)
		}
	}

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.DeleteImage(ctx, "default", fp)
	})
	wantStatus(t, err, http.StatusNotFound)
}

func TestImageAliases(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	fpA, fpB := fingerprint("a"), fingerprint("b")

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for _, fp := range []string{fpA, fpB} {
			_, err := tx.CreateImage(ctx, sampleImage(fp))
			if err != nil {
				return err
			}
		}

		err := tx.CreateImageAlias(ctx, "default", "z-debian", fpA, "Debian", "container")
		if err != nil {
			return err
		}

		return tx.CreateImageAlias(ctx, "default", "a-debian", fpA, "", "container")
	})

	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.CreateImageAlias(ctx, "default", "a-debian", fpB, "", "container")
	})
	wantStatus(t, err, http.StatusConflict)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.CreateImageAlias(ctx, "default", "x", fingerprint("c"), "", "container")
	})
	wantStatus(t, err, http.StatusNotFound)

	read(t, db, func(ctx context.Context, tx *Tx) error {
		got, err := tx.GetImageAlias(ctx, "default", "z-debian")
		if err != nil {
			return err
		}

		want := ImageAlias{ID: got.ID, Name: "z-debian", Description: "Debian", Fingerprint: fpA, Type: "container"}
		if *got != want {
			t.Errorf("GetImageAlias = %+v, want %+v", *got, want)
		}

		all, err := tx.GetImageAliases(ctx, "default")
		if err != nil {
			return err
		}

		if len(all) != 2 || all[0].Name != "a-debian" || all[1].Name != "z-debian" {
			t.Errorf("GetImageAliases = %+v", all)
		}

		forB, err := tx.GetImageAliasesFor(ctx, "default", fpB)
		if err != nil {
			return err
		}

		if len(forB) != 0 {
			t.Errorf("aliases for b = %+v", forB)
		}

		_, err = tx.GetImageAlias(ctx, "default", "nope")
		wantStatus(t, err, http.StatusNotFound)

		if err.Error() != `image alias "nope" not found` {
			t.Errorf("message = %q", err.Error())
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.UpdateImageAlias(ctx, "default", "z-debian", fpB, "moved")
		if err != nil {
			return err
		}

		err = tx.RenameImageAlias(ctx, "default", "z-debian", "debian")
		if err != nil {
			return err
		}

		return tx.DeleteImageAlias(ctx, "default", "a-debian")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		forB, err := tx.GetImageAliasesFor(ctx, "default", fpB)
		if err != nil {
			return err
		}

		if len(forB) != 1 || forB[0].Name != "debian" || forB[0].Description != "moved" {
			t.Errorf("aliases for b = %+v", forB)
		}

		all, err := tx.GetImageAliases(ctx, "default")
		if err != nil {
			return err
		}

		if len(all) != 1 {
			t.Errorf("aliases after delete = %+v", all)
		}

		return nil
	})

	for _, f := range []func(ctx context.Context, tx *Tx) error{
		func(ctx context.Context, tx *Tx) error { return tx.UpdateImageAlias(ctx, "default", "nope", fpA, "") },
		func(ctx context.Context, tx *Tx) error { return tx.RenameImageAlias(ctx, "default", "nope", "x") },
		func(ctx context.Context, tx *Tx) error { return tx.DeleteImageAlias(ctx, "default", "nope") },
		func(ctx context.Context, tx *Tx) error {
			_, err := tx.GetImageAliasesFor(ctx, "default", "nope")
			return err
		},
	} {
		wantStatus(t, db.Transaction(ctx, f), http.StatusNotFound)
	}
}

// Among public images only, a private image neither matches nor makes a prefix
// ambiguous: an untrusted caller learns nothing of it.
func TestGetPublicImage(t *testing.T) {
	db := newTestDB(t)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for _, p := range []string{"abc1", "abc2", "abd"} {
			img := sampleImage(fingerprint(p))
			img.Public = p == "abc1"
			_, err := tx.CreateImage(ctx, img)
			if err != nil {
				return err
			}
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		for _, prefix := range []string{"abc", "ab", fingerprint("abc1")} {
			got, err := tx.GetPublicImage(ctx, "default", prefix)
			if err != nil || got.Fingerprint != fingerprint("abc1") || got.Properties["os"] != "debian" {
				t.Errorf("GetPublicImage(%s) = %+v, %v", prefix, got, err)
			}
		}

		for _, private := range []string{"abc2", "abd", fingerprint("abd")} {
			_, err := tx.GetPublicImage(ctx, "default", private)
			wantStatus(t, err, http.StatusNotFound)
		}

		_, err := tx.GetImage(ctx, "default", "abc")
		wantStatus(t, err, http.StatusBadRequest)
		return nil
	})
}

// Images are per project: the same fingerprint and alias name in two projects are two
// rows; each call reaches only its project's; a delete in one leaves the other's.
func TestImagesPerProject(t *testing.T) {
	db := newTestDB(t)
	fp := fingerprint("abc")
	other := fingerprint("def")
	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateProject(ctx, Project{Name: "a", Config: map[string]string{"features.images": "true"}})
		if err != nil {
			return err
		}

		_, err = tx.CreateProject(ctx, Project{Name: "b", Config: map[string]string{"features.images": "false"}})
		if err != nil {
			return err
		}

		for _, img := range []Image{sampleImage(fp), {Project: "a", Fingerprint: fp}, {Project: "a", Fingerprint: other}} {
			_, err := tx.CreateImage(ctx, img)
			if err != nil {
				return err
			}
		}

		err = tx.CreateImageAlias(ctx, "default", "deb", fp, "", "")
		if err != nil {
			return err
		}

		return tx.CreateImageAlias(ctx, "a", "deb", other, "", "")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		for proj, want := range map[string]string{"default": "default", "a": "a", "b": "default"} {
			got, err := tx.ImagesProject(ctx, proj)
			if err != nil || got != want {
				t.Errorf("ImagesProject(%s) = %q, %v; want %q", proj, got, err, want)
			}
		}

		_, err := tx.ImagesProject(ctx, "nope")
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("ImagesProject(nope) = %v, want 404", err)
		}

		a, err := tx.GetImageAlias(ctx, "a", "deb")
		if err != nil || a.Fingerprint != other {
			t.Errorf("alias deb in a = %+v, %v; want %s", a, err, other)
		}

		d, err := tx.GetImageAlias(ctx, "default", "deb")
		if err != nil || d.Fingerprint != fp {
			t.Errorf("alias deb in default = %+v, %v; want %s", d, err, fp)
		}

		_, err = tx.GetImage(ctx, "default", other)
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("a's image found in default: %v", err)
		}

		list, err := tx.GetProjectImages(ctx, "a")
		if err != nil || len(list) != 2 || list[0].Project != "a" {
			t.Errorf("images of a = %+v, %v", list, err)
		}

		all, err := tx.GetImages(ctx)
		if err != nil || len(all) != 3 {
			t.Errorf("all images = %d, %v; want 3", len(all), err)
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.CreateImageAlias(ctx, "a", "x", fp, "", "")
		if err != nil {
			return err
		}

		return tx.DeleteImage(ctx, "a", fp)
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		used, err := tx.ImageInUse(ctx, fp)
		if err != nil || !used {
			t.Errorf("ImageInUse after a's delete = %v, %v; want true (default has it)", used, err)
		}

		_, err = tx.GetImage(ctx, "default", fp)
		if err != nil {
			t.Errorf("default's image gone with a's: %v", err)
		}

		_, err = tx.GetImageAlias(ctx, "a", "x")
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("a's alias of the deleted image: %v, want 404", err)
		}

		return nil
	})
}
