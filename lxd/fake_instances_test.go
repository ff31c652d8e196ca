package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
)

// fakeInstances is an in-memory instance manager: instances are records
// with a status, exec runs fake commands (fake_exec_test.go) and the console
// is an echoing terminal (fake_console_test.go). Its errors are the real
// manager's. Methods no fake-daemon test reaches are left to the nil
// interface.
type fakeInstances struct {
	instanceService

	cfg fakeConfig
	db  *db.DB

	mu        sync.Mutex
	instances map[string]*api.InstanceFull
	consoles  map[string]*fakeConsole
	nameSeq   int
}

func newFakeInstances(cfg fakeConfig, d *db.DB) *fakeInstances {
	f := &fakeInstances{cfg: cfg, db: d, instances: map[string]*api.InstanceFull{}, consoles: map[string]*fakeConsole{}}
	for _, seed := range cfg.Instances {
		inst := newFakeInstance(seed.Name, nil, false)
		inst.Location = f.location()
		setFakeStatus(inst, seed.Status)
		f.instances[seed.Name] = inst
	}

	return f
}

// location is where the fake's instances live, as the real server renders it: this
// member's name on a fake cluster (the first of cfg.Cluster), "none" otherwise.
func (f *fakeInstances) location() string {
	if len(f.cfg.Cluster) > 0 {
		return f.cfg.Cluster[0].Name
	}

	return "none"
}

func newFakeInstance(name string, profiles []string, ephemeral bool) *api.InstanceFull {
	now := time.Now().UTC()

	return &api.InstanceFull{Instance: api.Instance{
		InstancePut: api.InstancePut{
			Architecture: "x86_64",
			Config:       map[string]string{},
			Devices:      map[string]map[string]string{},
			Profiles:     profiles,
			Ephemeral:    ephemeral,
		},
		CreatedAt:       now,
		ExpandedConfig:  map[string]string{},
		ExpandedDevices: map[string]map[string]string{"eth0": {"type": "nic"}},
		Name:            name,
		Location:        "none",
		Type:            api.InstanceTypeContainer,
		Project:         "default",
	}}
}

// setFakeStatus sets status and fills the state as a running container's.
func setFakeStatus(inst *api.InstanceFull, status string) {
	code := map[string]api.StatusCode{"Running": api.Running, "Stopped": api.Stopped, "Frozen": api.Frozen}[status]
	inst.Status = status
	inst.StatusCode = code
	inst.State = &api.InstanceState{Status: status, StatusCode: code, Disk: map[string]api.InstanceStateDisk{}}

	if code == api.Stopped {
		return
	}

	inst.State.Pid = 4242
	inst.State.Processes = 7
	inst.State.CPU.Usage = 3_500_000_000
	inst.State.Memory.Usage = 48 << 20
	inst.State.Network = map[string]api.InstanceStateNetwork{
		"eth0": {Type: "broadcast", State: "up", Hwaddr: "00:16:3e:00:00:01", HostName: "veth" + inst.Name, Mtu: 1500,
			Addresses: []api.InstanceStateNetworkAddress{
				{Family: "inet", Address: "10.0.3.5", Netmask: "24", Scope: "global"},
				{Family: "inet6", Address: "fd42::5", Netmask: "64", Scope: "global"},
				{Family: "inet6", Address: "fe80::1", Netmask: "64", Scope: "link"},
			}},
		"lo": {Type: "loopback", State: "up", Addresses: []api.InstanceStateNetworkAddress{
			{Family: "inet", Address: "127.0.0.1", Netmask: "8", Scope: "local"},
		}},
	}
}

func notFoundErr(name string) error {
	return api.StatusErrorf(http.StatusNotFound, "instance %q not found", name)
}

// copyOf returns a copy of inst; full keeps its state.
func copyOf(inst *api.InstanceFull, full bool) *api.InstanceFull {
	out := *inst
	out.Config = maps.Clone(inst.Config)
	if !full {
		out.State = nil
	}

	return &out
}

func (f *fakeInstances) List(_ context.Context, full bool) ([]api.InstanceFull, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	out := []api.InstanceFull{}
	for _, name := range slices.Sorted(maps.Keys(f.instances)) {
		out = append(out, *copyOf(f.instances[name], full))
	}

	return out, nil
}

// AutostartBarrier: the fake autostarts nothing.
func (f *fakeInstances) AutostartBarrier() {}

// ListLocal is List: every fake instance is the fake daemon's own.
func (f *fakeInstances) ListLocal(ctx context.Context, full bool) ([]api.InstanceFull, error) {
	return f.List(ctx, full)
}

func (f *fakeInstances) Get(_ context.Context, name string, full bool) (*api.InstanceFull, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	inst, ok := f.instances[name]
	if !ok {
		return nil, notFoundErr(name)
	}

	return copyOf(inst, full), nil
}

func (f *fakeInstances) Exists(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()

	if _, ok := f.instances[name]; !ok {
		return notFoundErr(name)
	}

	return nil
}

func (f *fakeInstances) Names(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	return slices.Sorted(maps.Keys(f.instances)), nil
}

func (f *fakeInstances) State(ctx context.Context, name string) (*api.InstanceState, error) {
	inst, err := f.Get(ctx, name, true)
	if err != nil {
		return nil, err
	}

	return inst.State, nil
}

// PrepareCreate checks the name and resolves the image and profiles in the
// real database, as the manager does.
func (f *fakeInstances) PrepareCreate(ctx context.Context, req api.InstancesPost) (*instance.CreateRequest, error) {
	f.mu.Lock()
	if req.Name == "" {
		f.nameSeq++
		req.Name = fmt.Sprintf("happy-fox%d", f.nameSeq)
	}

	_, exists := f.instances[req.Name]
	f.mu.Unlock()

	if exists {
		return nil, api.StatusErrorf(http.StatusConflict, "instance %q already exists", req.Name)
	}

	if req.Profiles == nil {
		req.Profiles = []string{"default"}
	}

	cr := &instance.CreateRequest{Post: req}

	err := f.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for _, p := range req.Profiles {
			_, err := tx.GetProfile(ctx, p)
			if err != nil {
				return err
			}
		}

		if req.Source.Type != "image" {
			return api.StatusErrorf(http.StatusBadRequest, "source type %q is not supported", req.Source.Type)
		}

		fp := req.Source.Fingerprint
		if fp == "" {
			a, err := tx.GetImageAlias(ctx, "default", req.Source.Alias)
			if err != nil {
				return err
			}

			fp = a.Fingerprint
		}

		var err error

		cr.Image, err = tx.GetImage(ctx, "default", fp)

		return err
	})
	if err != nil {
		return nil, err
	}

	return cr, nil
}

func (f *fakeInstances) Create(_ context.Context, cr *instance.CreateRequest) error {
	time.Sleep(f.cfg.OpDelay)

	req := cr.Post
	inst := newFakeInstance(req.Name, req.Profiles, req.Ephemeral)
	inst.Location = f.location()
	maps.Copy(inst.Config, req.Config)
	maps.Copy(inst.Devices, req.Devices)
	inst.Config["volatile.base_image"] = cr.Image.Fingerprint
	setFakeStatus(inst, "Stopped")

	f.mu.Lock()
	defer f.mu.Unlock()

	// As newInstance: another create may have taken the name since PrepareCreate.
	if _, ok := f.instances[req.Name]; ok {
		return api.StatusErrorf(http.StatusConflict, "instance %q already exists", req.Name)
	}

	f.instances[req.Name] = inst

	return nil
}

// change runs fn on the named instance after the configured delay.
func (f *fakeInstances) change(name string, fn func(inst *api.InstanceFull) error) error {
	time.Sleep(f.cfg.OpDelay)

	f.mu.Lock()
	defer f.mu.Unlock()

	inst, ok := f.instances[name]
	if !ok {
		return notFoundErr(name)
	}

	return fn(inst)
}

func (f *fakeInstances) Start(_ context.Context, name string) error {
	return f.change(name, func(inst *api.InstanceFull) error {
		if f.cfg.FailStart != "" {
			return fmt.Errorf("%s", f.cfg.FailStart)
		}

		if inst.StatusCode != api.Stopped {
			return api.StatusErrorf(http.StatusBadRequest, "the instance is already running")
		}

		setFakeStatus(inst, "Running")

		return nil
	})
}

func (f *fakeInstances) Stop(_ context.Context, name string, _ time.Duration, _ bool) error {
	return f.change(name, func(inst *api.InstanceFull) error {
		if inst.StatusCode == api.Stopped {
			return api.StatusErrorf(http.StatusBadRequest, "the instance is already stopped")
		}

		setFakeStatus(inst, "Stopped")
		if inst.Ephemeral {
			delete(f.instances, name)
		}

		return nil
	})
}

func (f *fakeInstances) Restart(_ context.Context, name string, _ time.Duration, _ bool) error {
	return f.change(name, func(inst *api.InstanceFull) error {
		setFakeStatus(inst, "Running")
		return nil
	})
}

func (f *fakeInstances) Freeze(_ context.Context, name string) error {
	return f.change(name, func(inst *api.InstanceFull) error {
		if inst.StatusCode != api.Running {
			return api.StatusErrorf(http.StatusBadRequest, "the instance is not running")
		}

		setFakeStatus(inst, "Frozen")

		return nil
	})
}

func (f *fakeInstances) Unfreeze(_ context.Context, name string) error {
	return f.change(name, func(inst *api.InstanceFull) error {
		if inst.StatusCode != api.Frozen {
			return api.StatusErrorf(http.StatusBadRequest, "the instance is not frozen")
		}

		setFakeStatus(inst, "Running")

		return nil
	})
}

func (f *fakeInstances) Delete(_ context.Context, name string) error {
	return f.change(name, func(*api.InstanceFull) error {
		delete(f.instances, name)
		return nil
	})
}

// ExecEnv checks that the instance runs, as the manager does, and adds a PATH.
func (f *fakeInstances) ExecEnv(ctx context.Context, name string, req map[string]string, _ uint32) (map[string]string, error) {
	inst, err := f.Get(ctx, name, false)
	if err != nil {
		return nil, err
	}

	switch inst.StatusCode {
	case api.Running:
	case api.Frozen:
		return nil, api.StatusErrorf(http.StatusBadRequest, "Instance is frozen")
	default:
		return nil, api.StatusErrorf(http.StatusBadRequest, "Instance is not running")
	}

	env := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	maps.Copy(env, req)

	return env, nil
}

func (f *fakeInstances) ExecOutputPath(name, file string) string {
	return filepath.Join(f.cfg.Dir, "instances", name, "logs", file)
}

func (f *fakeInstances) ConsoleLogPath(name string) string {
	return filepath.Join(f.cfg.Dir, "instances", name, "logs", "console.log")
}

// The profile checks accept everything: the fake runs no containers.

func (f *fakeInstances) CheckNewProfile(*db.Profile) error { return nil }

func (f *fakeInstances) CheckProfile(context.Context, string, *db.Profile) error { return nil }

func (f *fakeInstances) ProfileChanged(context.Context, string, *db.Profile) error { return nil }
