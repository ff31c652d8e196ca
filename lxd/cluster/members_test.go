package cluster

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

func TestOfflineThreshold(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 20 * time.Second, "45": 45 * time.Second, "x": 20 * time.Second, "-3": 20 * time.Second} {
		if got := OfflineThreshold(in); got != want {
			t.Errorf("OfflineThreshold(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestStatusDatabase(t *testing.T) {
	cases := []struct {
		m        Member
		status   string
		database bool
	}{
		{Member{Online: true, Roles: []string{RoleDatabase, RoleDatabaseLeader}}, "Online", true},
		{Member{Online: true, Evacuated: true, Roles: []string{RoleDatabaseStandby}}, "Evacuated", false},
		{Member{Online: false, Evacuated: true, Roles: []string{RoleDatabase}}, "Offline", true},
		{Member{Online: true, Roles: []string{}}, "Online", false},
	}
	for i, c := range cases {
		if c.m.Status() != c.status || c.m.Database() != c.database {
			t.Errorf("case %d: %s %v, want %s %v", i, c.m.Status(), c.m.Database(), c.status, c.database)
		}
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
