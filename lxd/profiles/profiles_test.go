package profiles

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
)

// fakeInstances records re-applications and fails them on demand.
type fakeInstances struct {
	changed []string
	fail    error
}

func (f *fakeInstances) CheckNewProfile(p *db.Profile) error {
	err := instance.ValidateConfig(p.Config)
	if err != nil {
		return err
	}

	return instance.ValidateDevices(p.Devices)
}

func (f *fakeInstances) CheckProfile(_ context.Context, _ string, p *db.Profile) error {
	if p.Config["limits.memory"] == "nonsense" {
		return api.StatusErrorf(http.StatusBadRequest, "invalid config")
	}

	return nil
}

func (f *fakeInstances) ProfileChanged(_ context.Context, name string, old *db.Profile) error {
	f.changed = append(f.changed, name+":"+old.Description)
	if f.fail != nil {
		err := f.fail
		f.fail = nil
		return err
	}

	return nil
}

func newService(t *testing.T) (*Service, *fakeInstances, *[]string) {
	t.Helper()
	d, err := db.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	inst := &fakeInstances{}
	var events []string
	s := New(d, inst, func(action, url string, _ map[string]any) { events = append(events, action+" "+url) })
	return s, inst, &events
}

func TestProfileLifecycle(t *testing.T) {
	ctx := context.Background()
	s, inst, events := newService(t)

	err := s.Create(ctx, "default", api.ProfilesPost{Name: "web", ProfilePut: api.ProfilePut{Config: map[string]string{"limits.cpu": "1"}}})
	if err != nil {
		t.Fatal(err)
	}

	err = s.Create(ctx, "default", api.ProfilesPost{Name: "bad/name"})
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("bad name: %v", err)
	}

	err = s.Create(ctx, "default", api.ProfilesPost{Name: "bad", ProfilePut: api.ProfilePut{Config: map[string]string{"no.such.key": "1"}}})
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("bad key: %v", err)
	}

	p, err := s.Get(ctx, "default", "web")
	if err != nil || p.Config["limits.cpu"] != "1" || p.Devices == nil {
		t.Fatalf("get: %+v, %v", p, err)
	}

	// PATCH merges; a stale If-Match is a 412 and changes nothing.
	desc := "front"
	err = s.Merge(ctx, "default", "web", `"stale"`, Patch{Description: &desc})
	if !api.StatusErrorCheck(err, http.StatusPreconditionFailed) {
		t.Fatalf("stale etag: %v", err)
	}

	tag, _ := etag.Hash(ETag(p))
	err = s.Merge(ctx, "default", "web", `"`+tag+`"`, Patch{Description: &desc, Config: map[string]string{"limits.memory": "1GiB"}})
	if err != nil {
		t.Fatal(err)
	}

	p, _ = s.Get(ctx, "default", "web")
	if p.Description != "front" || p.Config["limits.cpu"] != "1" || p.Config["limits.memory"] != "1GiB" {
		t.Fatalf("after merge: %+v", p)
	}

	// A failed re-application puts the old profile back (and re-applies it).
	inst.fail = errors.New("boom")
	err = s.Replace(ctx, "default", "web", "", api.ProfilePut{Description: "new"})
	if err == nil {
		t.Fatal("replace succeeded despite the failed re-application")
	}

	p, _ = s.Get(ctx, "default", "web")
	if p.Description != "front" || p.Config["limits.cpu"] != "1" {
		t.Fatalf("not rolled back: %+v", p)
	}

	err = s.Replace(ctx, "default", "web", "", api.ProfilePut{Config: map[string]string{"limits.memory": "nonsense"}})
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("refused by instances: %v", err)
	}

	err = s.Rename(ctx, "default", "web", "www")
	if err != nil {
		t.Fatal(err)
	}

	err = s.Rename(ctx, "default", "default", "other")
	if !api.StatusErrorCheck(err, http.StatusBadRequest) {
		t.Fatalf("rename default: %v", err)
	}

	err = s.Delete(ctx, "default", "www")
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.Get(ctx, "default", "www")
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Fatalf("after delete: %v", err)
	}

	want := []string{"profile-created /1.0/profiles/web", "profile-updated /1.0/profiles/web", "profile-renamed /1.0/profiles/www", "profile-deleted /1.0/profiles/www"}
	if len(*events) != len(want) {
		t.Fatalf("events %q, want %q", *events, want)
	}

	for i := range want {
		if (*events)[i] != want[i] {
			t.Fatalf("events %q, want %q", *events, want)
		}
	}
}
