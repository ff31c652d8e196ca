package session

import (
	"context"
	"maps"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
)

// fakeInstances answers ExecEnv's two questions.
type fakeInstances struct {
	env       map[string]string
	envErr    error
	targetErr error
}

func (f *fakeInstances) ExecTarget(string) (int, error) { return 1, f.targetErr }

func (f *fakeInstances) StartedSeccomp(string) (*confine.Filter, error) { return nil, nil }

func (f *fakeInstances) Environment(context.Context, string) (map[string]string, error) {
	return f.env, f.envErr
}

func (f *fakeInstances) OpenFilesRoot(context.Context, string) (*instance.FilesRoot, error) {
	return nil, api.StatusErrorf(http.StatusNotFound, "not here")
}

func (f *fakeInstances) Running(string) *container.Monitor { return nil }

func TestExecEnv(t *testing.T) {
	inst := &fakeInstances{env: map[string]string{"FOO": "instance", "PATH": "/opt/bin", "KEEP": "1"}}
	s := New("/nonexistent", inst)

	cases := []struct {
		uid  uint32
		req  map[string]string
		want map[string]string
	}{
		{0, nil, map[string]string{"FOO": "instance", "PATH": "/opt/bin", "KEEP": "1", "LANG": "C.UTF-8", "HOME": "/root", "USER": "root"}},
		{0, map[string]string{"FOO": "request", "HOME": "/h"}, map[string]string{"FOO": "request", "PATH": "/opt/bin", "KEEP": "1", "LANG": "C.UTF-8", "HOME": "/h", "USER": "root"}},
		// Other users' HOME and USER come from the container's /etc/passwd.
		{1000, map[string]string{"LANG": "de_DE.UTF-8"}, map[string]string{"FOO": "instance", "PATH": "/opt/bin", "KEEP": "1", "LANG": "de_DE.UTF-8"}},
	}

	for _, c := range cases {
		got, err := s.ExecEnv(context.Background(), "c1", c.req, c.uid)
		if err != nil {
			t.Fatal(err)
		}

		if !maps.Equal(got, c.want) {
			t.Errorf("uid %d, request %v: got %v, want %v", c.uid, c.req, got, c.want)
		}
	}

	if inst.env["FOO"] != "instance" || len(inst.env) != 3 {
		t.Errorf("the instance's map was changed: %v", inst.env)
	}

	got, err := New("/nonexistent", &fakeInstances{}).ExecEnv(context.Background(), "c1", nil, 1)
	if err != nil || got["PATH"] != DefaultPath || len(got) != 2 {
		t.Errorf("no environment.* keys: %v, %v", got, err)
	}
}

// TestExecEnvErrors: a missing instance is a 404 before it is "not running"; a stopped or
// frozen one is the manager's 400.
func TestExecEnvErrors(t *testing.T) {
	notFound := api.StatusErrorf(http.StatusNotFound, "Instance not found")
	stopped := api.StatusErrorf(http.StatusBadRequest, "Instance is not running")

	for _, c := range []struct {
		inst *fakeInstances
		code int
	}{
		{&fakeInstances{envErr: notFound, targetErr: stopped}, http.StatusNotFound},
		{&fakeInstances{targetErr: stopped}, http.StatusBadRequest},
	} {
		_, err := New("/nonexistent", c.inst).ExecEnv(context.Background(), "c1", nil, 0)
		if !api.StatusErrorCheck(err, c.code) {
			t.Errorf("got %v, want a %d", err, c.code)
		}
	}
}
