package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// fakePool is a storage pool that keeps nothing: the fake daemon's image
// store checks and records images, and the pool pretends to hold them.
// Methods no fake-daemon test reaches are left to the nil interface.
type fakePool struct{ storage.Driver }

var fakePoolImages sync.Map // fingerprint → true

func (fakePool) Name() string { return "dir" }

func (fakePool) CreateImage(fp string, _ func(rootfsDir string) error) error {
	fakePoolImages.Store(fp, true)
	return nil
}

func (fakePool) HasImage(fp string) bool {
	_, ok := fakePoolImages.Load(fp)
	return ok
}

func (fakePool) DeleteImage(fp string) error {
	fakePoolImages.Delete(fp)
	return nil
}

// fakeNetworks is the managed bridge of a fresh berthd and the host's
// loopback, read-only.
type fakeNetworks struct{}

func (fakeNetworks) Errored() []string { return []string{} }

func (fakeNetworks) List(context.Context) ([]api.Network, error) {
	return []api.Network{
		{Name: "berthbr0", Type: "bridge", Managed: true, Status: "Created", UsedBy: []string{"/1.0/profiles/default"},
			NetworkPut: api.NetworkPut{Config: map[string]string{"ipv4.address": "10.0.3.1/24", "ipv6.address": "none"}}},
		{Name: "lo", Type: "loopback", Status: "Unknown", UsedBy: []string{}, NetworkPut: api.NetworkPut{Config: map[string]string{}}},
	}, nil
}

func (f fakeNetworks) Get(ctx context.Context, name string) (*api.Network, error) {
	list, _ := f.List(ctx)
	for i := range list {
		if list[i].Name == name {
			return &list[i], nil
		}
	}

	return nil, api.StatusErrorf(http.StatusNotFound, "network %q not found", name)
}

func (fakeNetworks) State(string) (*api.NetworkState, error) {
	return nil, api.StatusErrorf(http.StatusNotImplemented, "no network state in the fake daemon")
}

func (fakeNetworks) Create(context.Context, api.NetworksPost) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) Update(context.Context, string, string, api.NetworkPut, bool) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) Delete(context.Context, string) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakePool) ListImages() ([]string, error) {
	var fps []string
	fakePoolImages.Range(func(k, _ any) bool {
		fps = append(fps, k.(string))
		return true
	})

	return fps, nil
}

func (fakePool) PruneBackupImages() {}

func (fakeNetworks) Rename(context.Context, string, string) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) Leases(context.Context, string) ([]api.NetworkLease, error) {
	return []api.NetworkLease{}, nil
}

func (fakeNetworks) Forwards(context.Context, string) ([]api.NetworkForward, error) {
	return []api.NetworkForward{}, nil
}

func (fakeNetworks) Forward(_ context.Context, _, listen string) (*api.NetworkForward, error) {
	return nil, api.StatusErrorf(http.StatusNotFound, "network forward %q not found", listen)
}

func (fakeNetworks) CreateForward(context.Context, string, api.NetworkForwardsPost) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) UpdateForward(context.Context, string, string, string, api.NetworkForwardPut, bool) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) DeleteForward(context.Context, string, string) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) ACLs(context.Context) ([]api.NetworkACL, error) { return []api.NetworkACL{}, nil }

func (fakeNetworks) ACL(_ context.Context, name string) (*api.NetworkACL, error) {
	return nil, api.StatusErrorf(http.StatusNotFound, "network ACL %q not found", name)
}

func (fakeNetworks) CreateACL(context.Context, api.NetworkACLsPost) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) UpdateACL(context.Context, string, string, api.NetworkACLPut, bool) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) RenameACL(context.Context, string, string) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}

func (fakeNetworks) DeleteACL(context.Context, string) error {
	return api.StatusErrorf(http.StatusNotImplemented, "no network changes in the fake daemon")
}
