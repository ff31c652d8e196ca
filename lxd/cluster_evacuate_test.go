package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/shared/api"
)

// fakeEvacHost is a member's instances in memory, with a log of what was done.
type fakeEvacHost struct {
	evacuated map[string]bool
	insts     map[string]*evacuee
	calls     []string
	failStop  map[string]error // clean stop fails with this
	failStart map[string]error
	away      map[string]*evacuee // moved to another member
	awayOn    map[string]string   // ... that one
	place     string              // the member Place picks ("" none: Place fails)
	failMove  map[string]error
}

func newFakeEvacHost(insts ...evacuee) *fakeEvacHost {
	h := &fakeEvacHost{evacuated: map[string]bool{}, insts: map[string]*evacuee{}, failStop: map[string]error{}, failStart: map[string]error{},
		away: map[string]*evacuee{}, awayOn: map[string]string{}, failMove: map[string]error{}}
	for _, inst := range insts {
		if inst.Config == nil {
			inst.Config = map[string]string{}
		}

		h.insts[inst.Key] = &inst
	}

	return h
}

func (h *fakeEvacHost) LocalInstances(context.Context) ([]evacuee, error) {
	var out []evacuee
	for _, inst := range h.insts {
		c := *inst
		c.Config = maps.Clone(inst.Config)
		out = append(out, c)
	}

	return out, nil
}

func (h *fakeEvacHost) SetEvacuated(_ context.Context, member string, v bool) error {
	h.evacuated[member] = v
	h.calls = append(h.calls, "evacuated "+member+" "+map[bool]string{true: "true", false: "false"}[v])
	return nil
}

func (h *fakeEvacHost) Stop(_ context.Context, key string, _ time.Duration, force bool) error {
	inst := h.insts[key]
	if !inst.Running {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is already stopped")
	}

	if err := h.failStop[key]; err != nil && !force {
		h.calls = append(h.calls, "stop "+key+" failed")
		return err
	}

	inst.Running = false
	inst.Config[keyLastStatePower] = "STOPPED" // as the runner records any stop
	h.calls = append(h.calls, "stop "+key)
	return nil
}

func (h *fakeEvacHost) Start(_ context.Context, key string) error {
	if err := h.failStart[key]; err != nil {
		return err
	}

	inst := h.insts[key]
	inst.Running = true
	inst.Config[keyLastStatePower] = "RUNNING"
	h.calls = append(h.calls, "start "+key)
	return nil
}

func (h *fakeEvacHost) SetConfig(_ context.Context, key string, set map[string]string, unset []string) error {
	inst := h.insts[key]
	maps.Copy(inst.Config, set)
	for _, k := range unset {
		delete(inst.Config, k)
	}

	return nil
}

func (h *fakeEvacHost) Place(_ context.Context, member string) (cluster.Member, error) {
	if h.place == "" {
		return cluster.Member{}, api.StatusErrorf(http.StatusServiceUnavailable, "no cluster member can take a new instance: m9 is offline")
	}

	return cluster.Member{Name: h.place}, nil
}

func (h *fakeEvacHost) Move(_ context.Context, key string, to cluster.Member) error {
	if err := h.failMove[key]; err != nil {
		return err
	}

	inst := h.insts[key]
	if inst.Running {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is running", key)
	}

	delete(h.insts, key)
	h.away[key], h.awayOn[key] = inst, to.Name
	h.calls = append(h.calls, "move "+key+" "+to.Name)
	return nil
}

func (h *fakeEvacHost) StartOn(_ context.Context, key string, on cluster.Member) error {
	h.away[key].Running = true
	h.calls = append(h.calls, "start "+key+" on "+on.Name)
	return nil
}

func (h *fakeEvacHost) Moved(_ context.Context, member string) ([]movedEvacuee, error) {
	var out []movedEvacuee
	for key, inst := range h.away {
		if inst.Config[keyEvacuateOrigin] == member {
			out = append(out, movedEvacuee{Key: key, Member: h.awayOn[key]})
		}
	}

	return out, nil
}

func (h *fakeEvacHost) MoveBack(_ context.Context, key, from, to string) error {
	inst := h.away[key]
	inst.Running = false
	inst.Config[keyLastStatePower] = "STOPPED"
	delete(h.away, key)
	h.insts[key] = inst
	h.calls = append(h.calls, "move "+key+" back from "+from+" to "+to)
	return nil
}

func (h *fakeEvacHost) starts() []string {
	var out []string
	for _, c := range h.calls {
		if strings.HasPrefix(c, "start ") {
			out = append(out, strings.TrimPrefix(c, "start "))
		}
	}

	return out
}

func quietEvacuator(h evacuationHost) *evacuator {
	return &evacuator{host: h, log: slog.New(slog.DiscardHandler)}
}

func TestEvacuationMode(t *testing.T) {
	for _, c := range []struct {
		req    api.ClusterMemberStatePost
		mode   string
		status int
	}{
		{api.ClusterMemberStatePost{Action: "evacuate"}, "", 0},
		{api.ClusterMemberStatePost{Action: "evacuate", Mode: "stop"}, "stop", 0},
		{api.ClusterMemberStatePost{Action: "evacuate", Mode: "migrate"}, "migrate", 0},
		{api.ClusterMemberStatePost{Action: "evacuate", Mode: "live-migrate"}, "", http.StatusBadRequest},
		{api.ClusterMemberStatePost{Action: "evacuate", Mode: "teleport"}, "", http.StatusBadRequest},
		{api.ClusterMemberStatePost{Action: "restore"}, "", 0},
		{api.ClusterMemberStatePost{Action: "explode"}, "", http.StatusBadRequest},
		{api.ClusterMemberStatePost{}, "", http.StatusBadRequest},
	} {
		mode, err := evacuationMode(c.req)
		if mode != c.mode || api.StatusCodeOf(err) != c.status {
			t.Errorf("%+v: mode %q, %v; want %q, status %d", c.req, mode, err, c.mode, c.status)
		}
	}
}

// TestEvacuateStopRestore: evacuation marks the member first, stops exactly the running
// instances and records on each that it was running; restore clears the mark and starts
// exactly those, leaving an instance the admin had stopped before stopped.
func TestEvacuateStopRestore(t *testing.T) {
	h := newFakeEvacHost(
		evacuee{Key: "web", Running: true},
		evacuee{Key: "proj_db", Running: true},
		evacuee{Key: "idle", Running: false, Config: map[string]string{keyLastStatePower: "STOPPED"}},
	)
	ev := quietEvacuator(h)
	ctx := context.Background()

	err := ev.evacuate(ctx, "m2", evacuateStop)
	if err != nil {
		t.Fatal(err)
	}

	if h.calls[0] != "evacuated m2 true" {
		t.Fatalf("first call %q: the member must be marked before its instances stop", h.calls[0])
	}

	want := []string{"evacuated m2 true", "stop proj_db", "stop web"}
	if !reflect.DeepEqual(h.calls, want) {
		t.Fatalf("evacuation did %q, want %q", h.calls, want)
	}

	for _, key := range []string{"web", "proj_db"} {
		c := h.insts[key].Config
		if h.insts[key].Running || c[keyEvacuateOrigin] != "m2" || c[keyEvacuateRunning] != "true" || c[keyLastStatePower] != "RUNNING" {
			t.Errorf("%s after evacuation: running %v, config %v", key, h.insts[key].Running, c)
		}
	}

	if _, ok := h.insts["idle"].Config[keyEvacuateOrigin]; ok {
		t.Error("an instance that was already stopped was recorded as evacuated")
	}

	// The member reboots during maintenance: reconcile rewrites last_state.power.
	for _, inst := range h.insts {
		inst.Config[keyLastStatePower] = "STOPPED"
	}

	h.calls = nil
	err = ev.restore(ctx, "m2")
	if err != nil {
		t.Fatal(err)
	}

	if h.calls[0] != "evacuated m2 false" || h.evacuated["m2"] {
		t.Fatalf("restore did %q", h.calls)
	}

	if got := h.starts(); !reflect.DeepEqual(got, []string{"proj_db", "web"}) {
		t.Fatalf("restore started %q, want proj_db and web", got)
	}

	for key, inst := range h.insts {
		if _, ok := inst.Config[keyEvacuateOrigin]; ok {
			t.Errorf("%s keeps %s after restore", key, keyEvacuateOrigin)
		}

		if _, ok := inst.Config[keyEvacuateRunning]; ok {
			t.Errorf("%s keeps %s after restore", key, keyEvacuateRunning)
		}
	}

	if h.insts["idle"].Running {
		t.Error("restore started an instance that was stopped before the evacuation")
	}
}

// TestEvacuateForceAfterFailedShutdown: an instance that does not shut down cleanly is
// stopped by force; one that cannot be stopped at all is named in the error while the
// others are still stopped.
func TestEvacuateForceAfterFailedShutdown(t *testing.T) {
	h := newFakeEvacHost(evacuee{Key: "a", Running: true}, evacuee{Key: "b", Running: true})
	h.failStop["a"] = errors.New("timed out waiting for the instance to shut down")
	err := quietEvacuator(h).evacuate(context.Background(), "m1", evacuateStop)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{"evacuated m1 true", "stop a failed", "stop a", "stop b"}
	if !reflect.DeepEqual(h.calls, want) {
		t.Fatalf("calls %q, want %q", h.calls, want)
	}
}

// TestRestoreOnlyOwnOrigin: restore starts only what this member's evacuation stopped
// (origin names it), not an instance that arrived from elsewhere with another origin.
func TestRestoreOnlyOwnOrigin(t *testing.T) {
	start, clear := planRestore("m1", []evacuee{
		{Key: "mine", Config: map[string]string{keyEvacuateOrigin: "m1", keyEvacuateRunning: "true"}},
		{Key: "lxd-style", Config: map[string]string{keyEvacuateOrigin: "m1", keyLastStatePower: "RUNNING"}},
		{Key: "was-stopped", Config: map[string]string{keyEvacuateOrigin: "m1"}},
		{Key: "already-up", Running: true, Config: map[string]string{keyEvacuateOrigin: "m1", keyEvacuateRunning: "true"}},
		{Key: "other", Config: map[string]string{keyEvacuateOrigin: "m3", keyEvacuateRunning: "true"}},
		{Key: "plain", Config: map[string]string{keyLastStatePower: "RUNNING"}},
	})

	if !reflect.DeepEqual(start, []string{"lxd-style", "mine"}) {
		t.Errorf("start %q", start)
	}

	if !reflect.DeepEqual(clear, []string{"already-up", "lxd-style", "mine", "was-stopped"}) {
		t.Errorf("clear %q", clear)
	}
}

// TestRestoreReportsFailedStart: one instance that fails to start is named; the others
// start and the member is restored.
func TestRestoreReportsFailedStart(t *testing.T) {
	h := newFakeEvacHost(
		evacuee{Key: "a", Config: map[string]string{keyEvacuateOrigin: "m1", keyEvacuateRunning: "true"}},
		evacuee{Key: "b", Config: map[string]string{keyEvacuateOrigin: "m1", keyEvacuateRunning: "true"}},
	)
	h.evacuated["m1"] = true
	h.failStart["a"] = errors.New("no such image")
	err := quietEvacuator(h).restore(context.Background(), "m1")
	if err == nil || !strings.Contains(err.Error(), `starting instance "a"`) {
		t.Fatalf("restore: %v, want an error naming a", err)
	}

	if !h.insts["b"].Running || h.evacuated["m1"] {
		t.Fatalf("b running %v, m1 evacuated %v", h.insts["b"].Running, h.evacuated["m1"])
	}
}

// TestClusterMemberStateAPI drives POST /1.0/cluster/members/{name}/state through the
// router on a fake member m1 of a two-member cluster: evacuate and restore are operations
// that flip the member's evacuated state (which GET shows), a repeat of either is a 400,
// bad actions and modes are refused before anything changes, and a request for another
// member is not handled here.
func TestClusterMemberStateAPI(t *testing.T) {
	d := newFakeClusterDaemon(t, fakeMember{Name: "m1", Address: "10.251.0.1:8443"}, fakeMember{Name: "m2", Address: "10.251.0.2:8443"})
	call := fakeAPI(t, d)

	status := func() string {
		t.Helper()
		code, env, _ := call("GET", "/1.0/cluster/members/m1", "")
		var m api.ClusterMember
		_ = json.Unmarshal(env.Metadata, &m)
		if code != http.StatusOK {
			t.Fatalf("GET m1: %d %s", code, env.Error)
		}

		return m.Status
	}

	run := func(body string) {
		t.Helper()
		code, env, _ := call("POST", "/1.0/cluster/members/m1/state", body)
		if code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", body, code, env.Error)
		}

		code, env, _ = call("GET", env.Operation+"/wait?timeout=10", "")
		var op api.Operation
		_ = json.Unmarshal(env.Metadata, &op)
		if code != http.StatusOK || op.Status != "Success" {
			t.Fatalf("operation of %s: %d %+v %s", body, code, op, env.Error)
		}
	}

	for _, c := range []struct{ body, want string }{
		{`{"action":"explode"}`, `unknown action "explode"`},
		{`{"action":"evacuate","mode":"teleport"}`, `unknown evacuation mode "teleport"`},
		{`{"action":"restore"}`, `cluster member "m1" is not evacuated`},
	} {
		code, env, _ := call("POST", "/1.0/cluster/members/m1/state", c.body)
		if code != http.StatusBadRequest || !strings.Contains(env.Error, c.want) {
			t.Errorf("POST %s: %d %q, want 400 %q", c.body, code, env.Error, c.want)
		}
	}

	code, env, _ := call("POST", "/1.0/cluster/members/m1/state", `{"action":"evacuate","mode":"live-migrate"}`)
	if code != http.StatusBadRequest || !strings.Contains(env.Error, "not live-migrated") {
		t.Errorf("live-migrate: %d %q", code, env.Error)
	}

	code, env, _ = call("POST", "/1.0/cluster/members/m9/state", `{"action":"evacuate"}`)
	if code != http.StatusNotFound {
		t.Errorf("unknown member: %d %q", code, env.Error)
	}

	// No forwarding in this fake: the request for m2 must not be handled by m1.
	code, env, _ = call("POST", "/1.0/cluster/members/m2/state", `{"action":"evacuate"}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(env.Error, `cluster member "m2"`) {
		t.Errorf("other member without forwarding: %d %q", code, env.Error)
	}

	if s := status(); s != "Online" {
		t.Fatalf("m1 before evacuation: %s", s)
	}

	run(`{"action":"evacuate","mode":"stop"}`)
	if s := status(); s != "Evacuated" {
		t.Fatalf("m1 after evacuation: %s", s)
	}

	code, env, _ = call("POST", "/1.0/cluster/members/m1/state", `{"action":"evacuate"}`)
	if code != http.StatusBadRequest || !strings.Contains(env.Error, "already evacuated") {
		t.Errorf("second evacuation: %d %q", code, env.Error)
	}

	run(`{"action":"restore"}`)
	if s := status(); s != "Online" {
		t.Fatalf("m1 after restore: %s", s)
	}
}

// TestEvacuateMigrateRestore: without a mode each instance's cluster.evacuate decides:
// auto and migrate instances go to the member placement picks, running or not (a
// running one is stopped first and started there), a stop instance is stopped here.
// Restore moves back exactly those that went, then starts those that were running.
func TestEvacuateMigrateRestore(t *testing.T) {
	h := newFakeEvacHost(
		evacuee{Key: "web", Running: true, Action: evacuateAuto},
		evacuee{Key: "db", Running: false, Action: evacuateMigrate},
		evacuee{Key: "dev", Running: true, Action: evacuateStop},
	)
	h.place = "m3"
	ev := quietEvacuator(h)
	ctx := context.Background()

	err := ev.evacuate(ctx, "m2", "")
	if err != nil {
		t.Fatal(err)
	}

	want := []string{"evacuated m2 true", "move db m3", "stop dev", "stop web", "move web m3", "start web on m3"}
	if !reflect.DeepEqual(h.calls, want) {
		t.Fatalf("evacuation did %q, want %q", h.calls, want)
	}

	if h.away["web"].Config[keyEvacuateOrigin] != "m2" || h.away["db"].Config[keyEvacuateOrigin] != "m2" {
		t.Fatalf("moved instances do not record their origin: %v %v", h.away["web"].Config, h.away["db"].Config)
	}

	if _, ok := h.away["db"].Config[keyEvacuateRunning]; ok {
		t.Fatal("a stopped instance was recorded as running")
	}

	h.calls = nil
	err = ev.restore(ctx, "m2")
	if err != nil {
		t.Fatal(err)
	}

	want = []string{"evacuated m2 false", "move db back from m3 to m2", "move web back from m3 to m2"}
	if !reflect.DeepEqual(h.calls[:3], want) {
		t.Fatalf("restore did %q, want it to start with %q", h.calls, want)
	}

	if got := h.starts(); !reflect.DeepEqual(got, []string{"dev", "web"}) {
		t.Fatalf("restore started %q, want dev and web", got)
	}

	if len(h.away) != 0 || h.insts["db"].Running {
		t.Fatalf("after restore: away %v, db running %v", h.away, h.insts["db"].Running)
	}

	for key, inst := range h.insts {
		if _, ok := inst.Config[keyEvacuateOrigin]; ok {
			t.Errorf("%s keeps %s after restore", key, keyEvacuateOrigin)
		}
	}
}

// TestEvacuateMigrateNowhere: mode migrate with no member to go to fails before
// anything changes; without a mode, auto instances are stopped instead and an instance
// whose cluster.evacuate is migrate is named in the error, left running.
func TestEvacuateMigrateNowhere(t *testing.T) {
	h := newFakeEvacHost(evacuee{Key: "a", Running: true, Action: evacuateAuto})
	err := quietEvacuator(h).evacuate(context.Background(), "m1", evacuateMigrate)
	if err == nil || !strings.Contains(err.Error(), "m9 is offline") || len(h.calls) != 0 {
		t.Fatalf("migrate with nowhere to go: %v, calls %q", err, h.calls)
	}

	h = newFakeEvacHost(evacuee{Key: "a", Running: true, Action: evacuateAuto}, evacuee{Key: "b", Running: true, Action: evacuateMigrate})
	err = quietEvacuator(h).evacuate(context.Background(), "m1", "")
	if err == nil || !strings.Contains(err.Error(), `instance "b"`) {
		t.Fatalf("forced migrate with nowhere to go: %v", err)
	}

	want := []string{"evacuated m1 true", "stop a"}
	if !reflect.DeepEqual(h.calls, want) || !h.insts["b"].Running {
		t.Fatalf("calls %q (want %q), b running %v", h.calls, want, h.insts["b"].Running)
	}
}

// TestEvacuationAction: cluster.evacuate decides; auto migrates only an instance whose
// devices can all go elsewhere.
func TestEvacuationAction(t *testing.T) {
	root := map[string]string{"type": "disk", "path": "/", "pool": "default"}
	nic := map[string]string{"type": "nic", "network": "berthbr0", "name": "eth0"}
	for _, c := range []struct {
		config  map[string]string
		devices map[string]map[string]string
		want    string
	}{
		{nil, map[string]map[string]string{"root": root, "eth0": nic}, evacuateAuto},
		{map[string]string{"cluster.evacuate": "auto"}, map[string]map[string]string{"root": root}, evacuateAuto},
		{map[string]string{"cluster.evacuate": "stop"}, map[string]map[string]string{"root": root}, evacuateStop},
		{map[string]string{"cluster.evacuate": "migrate"}, map[string]map[string]string{"d": {"type": "disk", "source": "/srv", "path": "/srv"}}, evacuateMigrate},
		{nil, map[string]map[string]string{"root": root, "d": {"type": "disk", "source": "/srv", "path": "/srv"}}, evacuateStop},
		{nil, map[string]map[string]string{"root": root, "p": {"type": "proxy"}}, evacuateStop},
		{nil, map[string]map[string]string{"root": root, "eth0": {"type": "nic", "nictype": "bridged", "parent": "br9"}}, evacuateStop},
	} {
		if got := evacuationAction(c.config, c.devices); got != c.want {
			t.Errorf("%v %v: %q, want %q", c.config, c.devices, got, c.want)
		}
	}
}
