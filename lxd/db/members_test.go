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

func TestMembersSelfRowAndCRUD(t *testing.T) {
	db := newTestDB(t)
	beat := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

	read(t, db, func(ctx context.Context, tx *Tx) error {
		ms, err := tx.ClusterMembers(ctx)
		if err != nil {
			return err
		}

		want := []MemberRow{{ID: SelfMemberID, Name: "none", FailureDomain: "default"}}
		if !reflect.DeepEqual(ms, want) {
			t.Errorf("GetMembers of a fresh host = %+v, want %+v", ms, want)
		}

		return nil
	})

	var id int64
	write(t, db, func(ctx context.Context, tx *Tx) error {
		var err error
		id, err = tx.ClusterMemberAdd(ctx, MemberRow{Name: "m2", Address: "10.251.0.2:8443", Arch: "x86_64", SchemaVersion: 12,
			APIExtensions: 300, Heartbeat: beat})
		if err != nil {
			return err
		}

		err = tx.UpdateMember(ctx, "m2", "rack 2", "")
		if err != nil {
			return err
		}

		err = tx.ClusterMemberSetIdentity(ctx, MemberRow{ID: SelfMemberID, Name: "none", Address: "10.251.0.1:8443"})
		if err != nil {
			return err
		}

		return tx.SetMemberEvacuated(ctx, "m2", true)
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		m, err := tx.ClusterMember(ctx, "m2")
		if err != nil {
			return err
		}

		want := MemberRow{ID: id, Name: "m2", Address: "10.251.0.2:8443", Description: "rack 2", SchemaVersion: 12,
			APIExtensions: 300, Arch: "x86_64", FailureDomain: "default", Evacuated: true, Heartbeat: beat}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("ClusterMember = %+v, want %+v", m, want)
		}

		byID, err := tx.GetMemberByID(ctx, id)
		if err != nil || byID.Name != "m2" {
			t.Errorf("GetMemberByID(%d) = %+v, %v", id, byID, err)
		}

		self, err := tx.GetMemberByID(ctx, SelfMemberID)
		if err != nil || self.Address != "10.251.0.1:8443" {
			t.Errorf("member 1 after SetMemberAddress = %+v, %v", self, err)
		}

		_, err = tx.GetMemberByID(ctx, 99)
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("GetMemberByID(99) = %v, want 404", err)
		}

		beats, err := tx.GetMemberHeartbeats(ctx)
		if err != nil {
			return err
		}

		if !beats[id].Equal(beat) || !beats[SelfMemberID].IsZero() || len(beats) != 2 {
			t.Errorf("GetMemberHeartbeats = %v", beats)
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.RenameMember(ctx, "m2", "none")
		if !api.StatusErrorCheck(err, http.StatusConflict) {
			t.Errorf("RenameMember onto a taken name = %v, want 409", err)
		}

		err = tx.RenameMember(ctx, "gone", "x")
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("RenameMember of a missing member = %v, want 404", err)
		}

		err = tx.UpdateMember(ctx, "gone", "", "")
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("UpdateMember of a missing member = %v, want 404", err)
		}

		return tx.RenameMember(ctx, "m2", "m3")
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		m, err := tx.GetMemberByID(ctx, id)
		if err != nil || m.Name != "m3" || m.Description != "rack 2" {
			t.Errorf("after rename: %+v, %v", m, err)
		}

		return nil
	})
}

// An instance row of another member: counted there, its location is that member's name,
// and a member filter selects it (and its children) alone.
func TestInstancesOfMembers(t *testing.T) {
	db := newTestDB(t)
	var other int64
	write(t, db, func(ctx context.Context, tx *Tx) error {
		var err error
		other, err = tx.ClusterMemberAdd(ctx, MemberRow{Name: "m2"})
		if err != nil {
			return err
		}

		_, err = tx.ClusterMemberAdd(ctx, MemberRow{Name: "empty"})
		if err != nil {
			return err
		}

		for _, name := range []string{"a", "c"} {
			_, err = tx.CreateInstance(ctx, sampleInstance(name))
			if err != nil {
				return err
			}
		}

		remote := sampleInstance("b")
		remote.MemberID = other
		remote.Config = map[string]string{"user.where": "m2"}
		_, err = tx.CreateInstance(ctx, remote)
		if err != nil {
			return err
		}

		for _, inst := range []string{"a", "b"} {
			_, err = tx.CreateInstanceSnapshot(ctx, Snapshot{Instance: inst, Name: "s", ExpiresAt: time.Now().Add(-time.Hour)})
			if err != nil {
				return err
			}
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		all, err := tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		if instNames(all) != "a b c" {
			t.Errorf("GetInstances = %s, want every member's", instNames(all))
		}

		local, err := tx.GetInstancesWhere(ctx, InstanceFilter{MemberID: SelfMemberID})
		if err != nil {
			return err
		}

		if instNames(local) != "a c" {
			t.Errorf("instances of member 1 = %s, want a c", instNames(local))
		}

		for _, inst := range local {
			if inst.Config["user.where"] != "" || len(inst.Devices) != 3 || len(inst.Profiles) != 1 {
				t.Errorf("instance %s got another's children: %+v", inst.Name, inst)
			}
		}

		remote, err := tx.GetInstancesWhere(ctx, InstanceFilter{MemberID: other})
		if err != nil {
			return err
		}

		if instNames(remote) != "b" || remote[0].Location != "m2" || remote[0].Config["user.where"] != "m2" || len(remote[0].Devices) != 3 {
			t.Errorf("instances of m2 = %+v", remote)
		}

		name := "b"
		mine, err := tx.GetInstancesWhere(ctx, InstanceFilter{Name: &name, MemberID: SelfMemberID})
		if err != nil || len(mine) != 0 {
			t.Errorf("b filtered to member 1 = %+v, %v; want none", mine, err)
		}

		for member, want := range map[int64]string{0: "a b", SelfMemberID: "a", other: "b"} {
			snaps, err := tx.GetExpiringSnapshots(ctx, member)
			got := ""
			for _, sn := range snaps {
				got = strings.TrimSpace(got + " " + sn.Instance)
			}

			if err != nil || got != want {
				t.Errorf("GetExpiringSnapshots(member %d) = %q, %v; want %q", member, got, err, want)
			}
		}

		counts, err := tx.GetMemberInstanceCounts(ctx)
		if err != nil {
			return err
		}

		want := map[int64]int{SelfMemberID: 2, other: 1, other + 1: 0}
		if !reflect.DeepEqual(counts, want) {
			t.Errorf("GetMemberInstanceCounts = %v, want %v", counts, want)
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.DeleteMember(ctx, "m2", false)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("DeleteMember of a member with instances = %v, want 400", err)
		}

		err = tx.DeleteMember(ctx, "nope", false)
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("DeleteMember(nope) = %v, want 404", err)
		}

		err = tx.DeleteMember(ctx, "empty", false)
		if err != nil {
			t.Errorf("DeleteMember of an empty member: %v", err)
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.GetInstance(ctx, "b")
		if err != nil {
			t.Errorf("a refused DeleteMember changed its instances: %v", err)
		}

		return nil
	})

	write(t, db, func(ctx context.Context, tx *Tx) error {
		return tx.DeleteMember(ctx, "m2", true)
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		all, err := tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		if instNames(all) != "a c" {
			t.Errorf("after a forced DeleteMember: %s, want a c", instNames(all))
		}

		_, err = tx.ClusterMember(ctx, "m2")
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("deleted member still there: %v", err)
		}

		return nil
	})
}

func instNames(insts []Instance) string {
	s := ""
	for i, inst := range insts {
		if i > 0 {
			s += " "
		}

		s += inst.Name
	}

	return s
}
