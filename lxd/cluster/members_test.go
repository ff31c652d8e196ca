package cluster

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

func TestMemberOnline(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	v := View{Clustered: true, SelfID: 1, Now: now, Threshold: 20 * time.Second}
	cases := []struct {
		name string
		row  db.Member
		want bool
	}{
		{"self without a heartbeat", db.Member{ID: 1}, true},
		{"fresh heartbeat", db.Member{ID: 2, Heartbeat: now.Add(-5 * time.Second)}, true},
		{"heartbeat at the threshold", db.Member{ID: 2, Heartbeat: now.Add(-20 * time.Second)}, true},
		{"stale heartbeat", db.Member{ID: 2, Heartbeat: now.Add(-21 * time.Second)}, false},
		{"never heartbeated", db.Member{ID: 2}, false},
	}
	for _, c := range cases {
		if got := v.Member(c.row).Online; got != c.want {
			t.Errorf("%s: Online = %v, want %v", c.name, got, c.want)
		}
	}

	if !(View{Now: now}).Member(db.Member{ID: 1}).Online {
		t.Error("an unclustered host is offline")
	}

	def := View{Clustered: true, SelfID: 1, Now: now}
	if def.Member(db.Member{ID: 2, Heartbeat: now.Add(-19 * time.Second)}).Online != true ||
		def.Member(db.Member{ID: 2, Heartbeat: now.Add(-21 * time.Second)}).Online != false {
		t.Error("the default threshold is not 20s")
	}
}

func TestOfflineThreshold(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 20 * time.Second, "45": 45 * time.Second, "x": 20 * time.Second, "-3": 20 * time.Second} {
		if got := OfflineThreshold(in); got != want {
			t.Errorf("OfflineThreshold(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestStatusRolesDatabase(t *testing.T) {
	v := View{Clustered: true, SelfID: 1, Roles: map[string][]string{
		"10.251.0.1:8443": DatabaseRoles("voter", true),
		"10.251.0.2:8443": DatabaseRoles("standby", false),
	}}
	leader := v.Member(db.Member{ID: 1, Address: "10.251.0.1:8443"})
	if !reflect.DeepEqual(leader.Roles, []string{"database-leader", "database"}) || !leader.Database() || leader.Status() != "Online" {
		t.Errorf("leader = %+v", leader)
	}

	standby := v.Member(db.Member{ID: 2, Address: "10.251.0.2:8443", Evacuated: true, Heartbeat: time.Now()})
	if !reflect.DeepEqual(standby.Roles, []string{"database-standby"}) || standby.Database() || standby.Status() != "Evacuated" {
		t.Errorf("standby = %+v", standby)
	}

	spare := v.Member(db.Member{ID: 3, Address: "10.251.0.3:8443", Evacuated: true})
	if spare.Roles == nil || len(spare.Roles) != 0 || spare.Status() != "Offline" {
		t.Errorf("spare = %+v", spare)
	}

	if r := DatabaseRoles("voter", false); !reflect.DeepEqual(r, []string{"database"}) {
		t.Errorf("voter roles = %v", r)
	}
}

func TestPlace(t *testing.T) {
	ms := []Member{
		{ID: 1, Name: "m1", Online: true},
		{ID: 2, Name: "m2", Online: true},
		{ID: 3, Name: "m3", Online: true},
	}

	cases := []struct {
		name   string
		counts map[int64]int
		mod    func([]Member)
		want   string
	}{
		{"fewest instances", map[int64]int{1: 3, 2: 1, 3: 2}, nil, "m2"},
		{"tie goes to the lowest id", map[int64]int{1: 2, 2: 1, 3: 1}, nil, "m2"},
		{"no counts at all", nil, nil, "m1"},
		{"offline passed over", map[int64]int{1: 3, 2: 1, 3: 2}, func(m []Member) { m[1].Online = false }, "m3"},
		{"evacuated passed over", map[int64]int{1: 0, 2: 1, 3: 2}, func(m []Member) { m[0].Evacuated = true }, "m2"},
	}
	for _, c := range cases {
		in := append([]Member(nil), ms...)
		if c.mod != nil {
			c.mod(in)
		}

		got, err := Place(in, c.counts)
		if err != nil || got.Name != c.want {
			t.Errorf("%s: Place = %s, %v; want %s", c.name, got.Name, err, c.want)
		}
	}

	none := []Member{{ID: 1, Name: "m1", Online: false}, {ID: 2, Name: "m2", Online: true, Evacuated: true}}
	_, err := Place(none, nil)
	if !api.StatusErrorCheck(err, http.StatusServiceUnavailable) || !strings.Contains(err.Error(), "m1 is offline") ||
		!strings.Contains(err.Error(), "m2 is evacuated") {
		t.Errorf("Place with none eligible = %v", err)
	}

	_, err = Place(nil, nil)
	if err == nil {
		t.Error("Place with no members succeeded")
	}
}

func TestTarget(t *testing.T) {
	ms := []Member{{ID: 1, Name: "m1", Online: true}, {ID: 2, Name: "m2"}, {ID: 3, Name: "m3", Online: true, Evacuated: true}}
	m, err := Target(ms, "m1")
	if err != nil || m.ID != 1 {
		t.Errorf("Target(m1) = %+v, %v", m, err)
	}

	for name, code := range map[string]int{"nope": http.StatusNotFound, "m2": http.StatusServiceUnavailable, "m3": http.StatusBadRequest} {
		_, err := Target(ms, name)
		if !api.StatusErrorCheck(err, code) || !strings.Contains(err.Error(), name) {
			t.Errorf("Target(%s) = %v, want %d naming it", name, err, code)
		}
	}
}

func TestListAndGetMembers(t *testing.T) {
	ctx := t.Context()
	d, err := db.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	now := time.Now()
	err = d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateMember(ctx, db.Member{Name: "m2", Address: "10.251.0.2:8443", Heartbeat: now.Add(-time.Minute)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	v := View{Clustered: true, SelfID: 1, Now: now}
	err = d.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ms, err := ListMembers(ctx, tx, v)
		if err != nil {
			return err
		}

		if len(ms) != 2 || ms[0].Name != "none" || !ms[0].Online || ms[1].Name != "m2" || ms[1].Online {
			t.Errorf("ListMembers = %+v", ms)
		}

		m, err := GetMember(ctx, tx, "m2", v)
		if err != nil || m.Address != "10.251.0.2:8443" || m.Status() != "Offline" {
			t.Errorf("GetMember(m2) = %+v, %v", m, err)
		}

		_, err = GetMember(ctx, tx, "nope", v)
		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			t.Errorf("GetMember(nope) = %v, want 404", err)
		}

		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
