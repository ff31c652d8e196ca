package db

import (
	"context"
	"testing"
)

// A project's features.profiles reads as the API's scope checks read it (any spelling
// of true): a restricted project allowed to write its own profiles ("True", "1", "yes")
// must get its own, never the default project's.
func TestProfileProjectSpellings(t *testing.T) {
	db := newTestDB(t)
	cases := map[string]string{"t1": "True", "t2": "1", "t3": "yes", "t4": "true", "f1": "false", "f2": "0", "f3": ""}
	write(t, db, func(ctx context.Context, tx *Tx) error {
		for name, v := range cases {
			_, err := tx.CreateProject(ctx, Project{Name: name, Config: map[string]string{"features.profiles": v}})
			if err != nil {
				return err
			}
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		for name, v := range cases {
			want := DefaultProjectName
			if name[0] == 't' {
				want = name
			}

			got, err := tx.ProfileProject(ctx, name)
			if err != nil || got != want {
				t.Errorf("ProfileProject(%s) with features.profiles=%q = %q, %v; want %q", name, v, got, err, want)
			}
		}

		return nil
	})
}
