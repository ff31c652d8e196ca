package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

func TestCertificates(t *testing.T) {
	db := newTestDB(t)
	a := Certificate{Fingerprint: "aabb01ff", Type: "client", Name: "laptop", Certificate: "PEM-A"}
	b := Certificate{Fingerprint: "aabb02", Type: "metrics", Name: "prom", Certificate: "PEM-B", Restricted: true, Projects: []string{"default"}}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		for _, c := range []Certificate{a, b} {
			_, err := tx.CreateCertificate(ctx, c)
			if err != nil {
				return err
			}
		}

		_, err := tx.CreateCertificate(ctx, a)
		if !api.StatusErrorCheck(err, http.StatusConflict) {
			t.Errorf("second insert of the same fingerprint: %v, want 409", err)
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		all, err := tx.GetCertificates(ctx)
		if err != nil {
			return err
		}

		if len(all) != 2 || all[0].Name != "laptop" || !reflect.DeepEqual(all[0].Projects, []string{}) ||
			!all[1].Restricted || !reflect.DeepEqual(all[1].Projects, []string{"default"}) {
			t.Errorf("GetCertificates = %+v", all)
		}

		c, err := tx.GetCertificate(ctx, "aabb02")
		if err != nil || c.Name != "prom" {
			t.Errorf("exact lookup: %+v, %v", c, err)
		}

		_, err = tx.GetCertificate(ctx, "aabb")
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("ambiguous prefix: %v, want 400", err)
		}

		c, err = tx.GetCertificate(ctx, "aabb01")
		if err != nil || c.Fingerprint != "aabb01ff" {
			t.Errorf("unique prefix: %+v, %v", c, err)
		}

		for _, fp := range []string{"", "aa%", "ff"} {
			_, err = tx.GetCertificate(ctx, fp)
			if !api.StatusErrorCheck(err, http.StatusNotFound) {
				t.Errorf("lookup %q: %v, want 404", fp, err)
			}
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		a2 := a
		a2.Name, a2.Fingerprint, a2.Certificate = "renamed", "ccdd", "PEM-C"
		err := tx.UpdateCertificate(ctx, "aabb01ff", a2)
		if err != nil {
			return err
		}

		err = tx.UpdateCertificate(ctx, "ccdd", b)
		if !api.StatusErrorCheck(err, http.StatusConflict) {
			t.Errorf("update onto another fingerprint: %v, want 409", err)
		}

		err = tx.DeleteCertificate(ctx, "aabb02")
		if err != nil {
			return err
		}

		err = tx.DeleteCertificate(ctx, "aabb02")
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("second delete: %v, want 404", err)
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		all, err := tx.GetCertificates(ctx)
		if err != nil {
			return err
		}

		if len(all) != 1 || all[0].Fingerprint != "ccdd" || all[0].Name != "renamed" {
			t.Errorf("after update and delete: %+v", all)
		}

		return nil
	})
}
