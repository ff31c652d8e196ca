package db

import (
	"context"
	"net/http"
	"testing"
)

func TestDefaultProjectSeeded(t *testing.T) {
	db := newTestDB(t)
	read(t, db, func(ctx context.Context, tx *Tx) error {
		p, err := tx.GetProject(ctx, "default")
		if err != nil {
			return err
		}

		if p.Config["features.profiles"] != "true" {
			t.Errorf("default project config = %v", p.Config)
		}

		return nil
	})
}

func TestProjectLifeCycle(t *testing.T) {
	db := newTestDB(t)
	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateProject(ctx, Project{Name: "p1", Config: map[string]string{"limits.instances": "2"}})
		return err
	})

	// Names are per project: c1 in default and c1 in p1 (key p1_c1) both exist.
	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, sampleInstance("c1"))
		if err != nil {
			return err
		}

		_, err = tx.CreateInstance(ctx, sampleInstance("p1_c1"))
		return err
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		u, err := tx.GetProjectUsage(ctx, "p1")
		if err != nil {
			return err
		}

		if u.Instances != 1 || len(u.InstanceKeys) != 1 || u.InstanceKeys[0] != "p1_c1" {
			t.Errorf("usage of p1 = %+v", u)
		}

		u, err = tx.GetProjectUsage(ctx, "default")
		if err != nil {
			return err
		}

		if u.Instances != 1 || u.InstanceKeys[0] != "c1" {
			t.Errorf("usage of default = %+v", u)
		}

		return nil
	})

	ctx := context.Background()
	err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error { return tx.DeleteProject(ctx, "p1") })
	wantStatus(t, err, http.StatusBadRequest)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error { return tx.DeleteProject(ctx, "default") })
	wantStatus(t, err, http.StatusForbidden)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error { return tx.RenameProject(ctx, "default", "x") })
	wantStatus(t, err, http.StatusForbidden)

	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error { return tx.DeleteProject(ctx, "nope") })
	wantStatus(t, err, http.StatusNotFound)

	// An instance key naming a project that does not exist is refused.
	err = db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.CreateInstance(ctx, sampleInstance("nope_c1"))
		return err
	})
	if err == nil {
		t.Fatal("an instance in a missing project was created")
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.DeleteInstance(ctx, "p1_c1")
		if err != nil {
			return err
		}

		err = tx.UpdateProject(ctx, "p1", Project{Description: "d", Config: map[string]string{"limits.instances": "3"}})
		if err != nil {
			return err
		}

		return tx.RenameProject(ctx, "p1", "p2")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		p, err := tx.GetProject(ctx, "p2")
		if err != nil {
			return err
		}

		if p.Description != "d" || p.Config["limits.instances"] != "3" || len(p.Config) != 1 {
			t.Errorf("p2 = %+v", p)
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error { return tx.DeleteProject(ctx, "p2") })
	read(t, db, func(ctx context.Context, tx *Tx) error {
		ps, err := tx.GetProjects(ctx)
		if err != nil {
			return err
		}

		if len(ps) != 1 || ps[0].Name != "default" {
			t.Errorf("projects = %+v", ps)
		}

		return nil
	})
}
