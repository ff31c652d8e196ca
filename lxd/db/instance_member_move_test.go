package db

import (
	"context"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestMoveInstanceToMember: the move changes the one row (member, config, name) with
// its snapshots following; it is refused (409) and changes nothing when the row is no
// longer on the member it is moved from, and a failure later in the same transaction
// (the new name taken) leaves the row as it was.
func TestMoveInstanceToMember(t *testing.T) {
	db := newTestDB(t)
	var m2 int64
	write(t, db, func(ctx context.Context, tx *Tx) error {
		var err error
		m2, err = tx.ClusterMemberAdd(ctx, MemberRow{Name: "m2"})
		if err != nil {
			return err
		}

		for _, n := range []string{"c1", "taken"} {
			inst := sampleInstance(n)
			inst.Config = map[string]string{"volatile.uuid": "u-" + n, "volatile.idmap.base": "1000000", "volatile.eth0.host_name": "veth1"}
			_, err = tx.CreateInstance(ctx, inst)
			if err != nil {
				return err
			}
		}

		_, err = tx.CreateInstanceSnapshot(ctx, Snapshot{Instance: "c1", Name: "s1"})
		return err
	})

	// Not on member m2: refused.
	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.MoveInstanceToMember(ctx, "c1", "c1", m2, SelfMemberID, nil, nil)
	})
	if api.StatusCodeOf(err) != http.StatusConflict {
		t.Fatalf("move from the wrong member: %v, want 409", err)
	}

	// The new name is taken: the whole transaction fails, nothing changed.
	err = db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.MoveInstanceToMember(ctx, "c1", "taken", SelfMemberID, m2, map[string]string{"volatile.idmap.base": "2000000"}, nil)
	})
	if err == nil {
		t.Fatal("a move onto a taken name succeeded")
	}

	read(t, db, func(ctx context.Context, tx *Tx) error {
		inst, err := tx.GetInstance(ctx, "c1")
		if err != nil {
			return err
		}

		if inst.MemberID != SelfMemberID || inst.Config["volatile.idmap.base"] != "1000000" {
			t.Errorf("after the failed move c1 is on %d with %v", inst.MemberID, inst.Config)
		}

		return nil
	})

	err = db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return tx.MoveInstanceToMember(ctx, "c1", "c9", SelfMemberID, m2,
			map[string]string{"volatile.idmap.base": "2000000"}, []string{"volatile.eth0.host_name"})
	})
	if err != nil {
		t.Fatal(err)
	}

	read(t, db, func(ctx context.Context, tx *Tx) error {
		all, err := tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		if instNames(all) != "c9 taken" {
			t.Errorf("instances after the move: %s, want c9 taken (one row, renamed)", instNames(all))
		}

		inst, err := tx.GetInstance(ctx, "c9")
		if err != nil {
			return err
		}

		if inst.MemberID != m2 || inst.Config["volatile.idmap.base"] != "2000000" || inst.Config["volatile.uuid"] != "u-c1" {
			t.Errorf("moved row: member %d config %v", inst.MemberID, inst.Config)
		}

		if _, ok := inst.Config["volatile.eth0.host_name"]; ok {
			t.Error("the old host's NIC name stayed")
		}

		snaps, err := tx.GetInstanceSnapshots(ctx, "c9")
		if err != nil || len(snaps) != 1 || snaps[0].Name != "s1" {
			t.Errorf("snapshots after the move: %+v %v", snaps, err)
		}

		return nil
	})
}
