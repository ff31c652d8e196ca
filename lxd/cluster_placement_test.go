package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

func TestPlaceInstance(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...) // m1 (self), m2 offline, m3 evacuated, m4
	ctx := context.Background()

	m, err := d.placeInstance(ctx, "")
	if err != nil || m.Name != "m1" {
		t.Fatalf("placement with no instances = %s, %v; want m1 (lowest id)", m.Name, err)
	}

	err = d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstance(ctx, db.Instance{Name: "c1", Type: "container"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	m, err = d.placeInstance(ctx, "")
	if err != nil || m.Name != "m4" {
		t.Errorf("placement with one instance on m1 = %s, %v; want m4 (m2 offline, m3 evacuated)", m.Name, err)
	}

	name, err := d.placeMemberName(ctx, "")
	if err != nil || name != "m4" {
		t.Errorf("placeMemberName = %s, %v", name, err)
	}

	m, err = d.placeInstance(ctx, "m1")
	if err != nil || m.Name != "m1" {
		t.Errorf("target m1 = %s, %v", m.Name, err)
	}

	for target, code := range map[string]int{"nope": http.StatusNotFound, "m2": http.StatusServiceUnavailable, "m3": http.StatusBadRequest} {
		_, err := d.placeInstance(ctx, target)
		if !api.StatusErrorCheck(err, code) || !strings.Contains(err.Error(), target) {
			t.Errorf("target %s: %v, want %d naming it", target, err, code)
		}
	}
}

func TestPlaceInstanceUnclustered(t *testing.T) {
	d := newFakeClusterDaemon(t)
	m, err := d.placeInstance(context.Background(), "")
	if err != nil || m.ID != db.SelfMemberID || m.Name != "none" {
		t.Errorf("unclustered placement = %+v, %v; want self", m, err)
	}

	_, err = d.placeInstance(context.Background(), "m2")
	if !api.StatusErrorCheck(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "not clustered") {
		t.Errorf("unclustered target: %v", err)
	}
}

// POST /1.0/instances?target=: an unknown member is a 404 naming it and creates
// nothing; this member is accepted; another member that forwarding did not take is a
// 503 naming it.
func TestInstancesPostTarget(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	call := fakeAPI(t, d)
	body := `{"name":"c1","source":{"type":"image","alias":"img"}}`

	code, env, _ := call("POST", "/1.0/instances?target=nope", body)
	if code != http.StatusNotFound || !strings.Contains(env.Error, `"nope"`) {
		t.Errorf("target=nope: %d %s", code, env.Error)
	}

	code, env, _ = call("POST", "/1.0/instances?target=m4", body)
	if code != http.StatusServiceUnavailable || !strings.Contains(env.Error, `"m4"`) {
		t.Errorf("target=m4 (another member, not forwarded): %d %s", code, env.Error)
	}

	list, _ := d.instances.List(context.Background(), false)
	if len(list) != 0 {
		t.Fatalf("a refused create made %d instances", len(list))
	}

	code, env, _ = call("POST", "/1.0/instances?target=m1", body)
	if code != http.StatusAccepted {
		t.Errorf("target=m1 (this member): %d %s", code, env.Error)
	}
}
