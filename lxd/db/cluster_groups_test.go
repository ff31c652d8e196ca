package db

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// Cluster groups as LXD keeps them: every member in "default" from the start (the
// existing row by the update, a new one on add); a member left out of a group's PUT
// leaves it only when it is in another group; "default" is neither renamed nor deleted,
// a group with members is not deleted; unknown names are refused and change nothing.
func TestClusterGroups(t *testing.T) {
	db := newTestDB(t)
	code := func(err error) int { return api.StatusCodeOf(err) }

	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.ClusterMemberAdd(ctx, MemberRow{Name: "m2", Address: "10.251.0.2:8443"})
		return err
	})

	groups := func() map[string][]string {
		var out map[string][]string
		read(t, db, func(ctx context.Context, tx *Tx) error {
			var err error
			out, err = tx.MemberGroups(ctx)
			return err
		})

		return out
	}

	if got := groups(); !reflect.DeepEqual(got, map[string][]string{"none": {"default"}, "m2": {"default"}}) {
		t.Fatalf("members' groups of a fresh host and a new member: %v", got)
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.CreateClusterGroup(ctx, "gpu", "with GPUs", []string{"m2"})
		if err != nil {
			return err
		}

		if err := tx.CreateClusterGroup(ctx, "gpu", "", nil); code(err) != http.StatusConflict {
			t.Errorf("a second group gpu: %v, want 409", err)
		}

		if err := tx.CreateClusterGroup(ctx, "x", "", []string{"m9"}); code(err) != http.StatusBadRequest {
			t.Errorf("a group with an unknown member: %v, want 400", err)
		}

		// m2 leaves default (it is in gpu too); none stays (default is its only group).
		err = tx.UpdateClusterGroup(ctx, "default", "d", []string{})
		if err != nil {
			return err
		}

		if err := tx.DeleteClusterGroup(ctx, "default"); code(err) != http.StatusForbidden {
			t.Errorf("deleting default: %v, want 403", err)
		}

		if err := tx.RenameClusterGroup(ctx, "default", "other"); code(err) != http.StatusForbidden {
			t.Errorf("renaming default: %v, want 403", err)
		}

		if err := tx.DeleteClusterGroup(ctx, "gpu"); code(err) != http.StatusBadRequest {
			t.Errorf("deleting a group with members: %v, want 400", err)
		}

		if err := tx.SetMemberGroups(ctx, "m2", nil); code(err) != http.StatusBadRequest {
			t.Errorf("a member in no group: %v, want 400", err)
		}

		if err := tx.SetMemberGroups(ctx, "m2", []string{"nope"}); code(err) != http.StatusBadRequest {
			t.Errorf("a member in an unknown group: %v, want 400", err)
		}

		return nil
	})

	if got := groups(); !reflect.DeepEqual(got, map[string][]string{"none": {"default"}, "m2": {"gpu"}}) {
		t.Fatalf("after PUT default without members: %v", got)
	}

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.SetMemberGroups(ctx, "m2", []string{"default"})
		if err != nil {
			return err
		}

		err = tx.RenameClusterGroup(ctx, "gpu", "fast")
		if err != nil {
			return err
		}

		ids, err := tx.ClusterGroupMemberIDs(ctx, "default")
		if err != nil || len(ids) != 2 {
			t.Errorf("default's members: %v %v", ids, err)
		}

		if _, err := tx.ClusterGroupMemberIDs(ctx, "gpu"); code(err) != http.StatusNotFound {
			t.Errorf("a renamed group's old name: %v, want 404", err)
		}

		return tx.DeleteClusterGroup(ctx, "fast")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		gs, err := tx.ClusterGroups(ctx)
		if err != nil || len(gs) != 1 || gs[0].Name != "default" || gs[0].Description != "d" ||
			!reflect.DeepEqual(gs[0].Members, []string{"m2", "none"}) {
			t.Errorf("groups at the end: %+v %v", gs, err)
		}

		return nil
	})
}
