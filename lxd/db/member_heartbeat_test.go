package db

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

func TestSetMemberHeartbeat(t *testing.T) {
	db := newTestDB(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

	write(t, db, func(ctx context.Context, tx *Tx) error {
		err := tx.SetMemberHeartbeat(ctx, SelfMemberID, "10.251.0.1:8443", SchemaVersion(), 42, at)
		if err != nil {
			return err
		}

		// An empty address keeps the recorded one.
		err = tx.SetMemberHeartbeat(ctx, SelfMemberID, "", SchemaVersion(), 42, at.Add(time.Second))
		if err != nil {
			return err
		}

		err = tx.SetMemberHeartbeat(ctx, 99, "x:1", 1, 1, at)
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("heartbeat of a removed member = %v, want 404", err)
		}

		return nil
	})

	read(t, db, func(ctx context.Context, tx *Tx) error {
		m, err := tx.GetMemberByID(ctx, SelfMemberID)
		if err != nil {
			return err
		}

		if !m.Heartbeat.Equal(at.Add(time.Second)) || m.Address != "10.251.0.1:8443" || m.SchemaVersion != SchemaVersion() || m.APIExtensions != 42 {
			t.Errorf("member after heartbeats = %+v", m)
		}

		return nil
	})
}

// TestExchangeMemberVersions: the exchange records this member's versions and shows
// everyone's; a decision against it rolls the record back.
func TestExchangeMemberVersions(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	write(t, db, func(ctx context.Context, tx *Tx) error {
		_, err := tx.ClusterMemberAdd(ctx, MemberRow{Name: "m2", Address: "10.251.0.2:8443", SchemaVersion: 11, APIExtensions: 40})
		return err
	})

	var seen []MemberVersion
	err := ExchangeMemberVersions(ctx, db.write, SelfMemberID, 12, 41, func(all []MemberVersion) bool { seen = all; return false })
	if err != nil {
		t.Fatal(err)
	}

	if len(seen) != 2 || seen[0].SchemaVersion != 12 || seen[0].APIExtensions != 41 || seen[1].Name != "m2" || seen[1].SchemaVersion != 11 {
		t.Fatalf("versions seen = %+v", seen)
	}

	versionOf := func() int {
		var v int
		read(t, db, func(ctx context.Context, tx *Tx) error {
			m, err := tx.GetMemberByID(ctx, SelfMemberID)
			v = m.SchemaVersion
			return err
		})

		return v
	}

	if v := versionOf(); v != 0 {
		t.Fatalf("a refused exchange left schema %d recorded", v)
	}

	err = ExchangeMemberVersions(ctx, db.write, SelfMemberID, 12, 41, func([]MemberVersion) bool { return true })
	if err != nil {
		t.Fatal(err)
	}

	if v := versionOf(); v != 12 {
		t.Fatalf("an accepted exchange recorded schema %d, want 12", v)
	}

	err = ExchangeMemberVersions(ctx, db.write, 99, 12, 41, func([]MemberVersion) bool { return true })
	if err == nil {
		t.Fatal("exchange for a missing member row succeeded")
	}
}
