package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// Evacuation of a cluster member (issue 16, item 2): POST /1.0/cluster/members/{name}/state
// {"action": "evacuate"|"restore", "mode": "stop"|"migrate"}, as lxc cluster evacuate and
// restore send it. The member itself does the work (a request to another member is
// forwarded there): evacuate marks it evacuated, so placement passes it over, then stops
// its running instances or moves them to other members (mode, else each instance's
// cluster.evacuate: cluster_evacuate_policy.go), recording on each that this member
// evacuated it and whether it was running; restore clears the mark, moves back what went
// elsewhere and starts what was running. Containers are never touched on a member that
// did not evacuate them.

// The volatile keys evacuation records on an instance. volatile.evacuate.origin and
// volatile.last_state.power=RUNNING are LXD's; volatile.evacuate.running is Berth's own,
// because the daemon's start-up reconcile rewrites last_state.power to STOPPED for a
// container that was stopped (as evacuation stops them), and a member is typically
// rebooted between its evacuation and its restore.
const (
	keyEvacuateOrigin  = "volatile.evacuate.origin"
	keyEvacuateRunning = "volatile.evacuate.running"
	keyLastStatePower  = "volatile.last_state.power"
)

// Evacuation modes.
const (
	evacuateStop        = "stop"
	evacuateMigrate     = "migrate"
	evacuateAuto        = "auto"
	evacuateLiveMigrate = "live-migrate"
)

func init() {
	endpoints = append(endpoints, APIEndpoint{Path: "cluster/members/{name}/state", Post: clusterMemberStatePost})
}

// evacuationCluster is what evacuation needs of the membership service (d.cluster).
type evacuationCluster interface {
	Enabled() bool
	Self() cluster.Member
	Member(ctx context.Context, name string) (cluster.Member, error)
}

// POST /1.0/cluster/members/{name}/state
func clusterMemberStatePost(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	c := d.evacuationCluster()
	if c == nil || !c.Enabled() {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "this server is not clustered"))
	}

	m, err := c.Member(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	if m.Name != c.Self().Name {
		return d.forwardMemberState(r, m) // the body is read there
	}

	req := api.ClusterMemberStatePost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	mode, err := evacuationMode(req)
	if err != nil {
		return response.SmartError(err)
	}

	switch {
	case req.Action == "evacuate" && m.Evacuated:
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "cluster member %q is already evacuated", name))
	case req.Action == "restore" && !m.Evacuated:
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "cluster member %q is not evacuated", name))
	}

	ev := &evacuator{host: daemonEvacuationHost{d}, log: d.log}
	res := map[string][]string{"cluster_members": {"/1.0/cluster/members/" + name}}
	if req.Action == "restore" {
		return d.task("Restoring cluster member", res, func(ctx context.Context, _ *operations.Operation) error {
			return ev.restore(ctx, m.Name)
		})
	}

	return d.task("Evacuating cluster member", res, func(ctx context.Context, _ *operations.Operation) error {
		return ev.evacuate(ctx, m.Name, mode)
	})
}

// evacuationMode checks the request: the action, and for evacuate the mode: "" leaves
// the choice to each instance's cluster.evacuate (LXD 5.0's lxc sends no mode), "stop"
// and "migrate" force it. Live migration is not supported.
func evacuationMode(req api.ClusterMemberStatePost) (string, error) {
	switch req.Action {
	case "restore":
		return "", nil
	case "evacuate":
	default:
		return "", api.StatusErrorf(http.StatusBadRequest, "unknown action %q (evacuate, restore)", req.Action)
	}

	switch req.Mode {
	case "", evacuateStop, evacuateMigrate:
		return req.Mode, nil
	case evacuateLiveMigrate:
		return "", api.StatusErrorf(http.StatusBadRequest, "evacuation mode %q is not supported: containers are not live-migrated; use %q", req.Mode, evacuateMigrate)
	}

	return "", api.StatusErrorf(http.StatusBadRequest, "unknown evacuation mode %q (stop, migrate)", req.Mode)
}

// evacuee is one instance of the member as evacuation sees it.
type evacuee struct {
	Key     string // project key
	Running bool
	Config  map[string]string // local config (volatile keys included)
	Timeout time.Duration     // clean shutdown timeout; <0 the default
	// Action is what its cluster.evacuate asks (evacuationAction): stop, migrate, or
	// auto (migrate when it can go elsewhere, else stop).
	Action string
}

// movedEvacuee is an instance this member's evacuation moved to another member.
type movedEvacuee struct {
	Key    string
	Member string // where it is now
}

// evacuationHost is what evacuation does to this member (daemonEvacuationHost: the
// database and the instance manager; a fake in tests).
type evacuationHost interface {
	LocalInstances(ctx context.Context) ([]evacuee, error)
	SetEvacuated(ctx context.Context, member string, evacuated bool) error
	Stop(ctx context.Context, key string, timeout time.Duration, force bool) error
	Start(ctx context.Context, key string) error
	SetConfig(ctx context.Context, key string, set map[string]string, unset []string) error
	// Place picks the member an instance of member goes to (the fewest instances among
	// the others online and not evacuated).
	Place(ctx context.Context, member string) (cluster.Member, error)
	// Move moves stopped instance key of this member to member to; StartOn starts it
	// there.
	Move(ctx context.Context, key string, to cluster.Member) error
	StartOn(ctx context.Context, key string, on cluster.Member) error
	// Moved lists the instances on other members whose evacuation origin is member.
	Moved(ctx context.Context, member string) ([]movedEvacuee, error)
	// MoveBack stops instance key on member from (if running) and moves it to member to.
	MoveBack(ctx context.Context, key, from, to string) error
}

type evacuator struct {
	host evacuationHost
	log  *slog.Logger
}

// evacuationStep is what happens to one instance.
type evacuationStep struct {
	Key     string
	Stop    bool // running: stop it (cleanly, then by force) and record it was running
	Migrate bool // move it to another member (started there if it was running)
	Auto    bool // migrate chosen by cluster.evacuate=auto: stop instead when nowhere to go
}

// planEvacuation lists, in key order, what evacuating this member does to its instances:
// those to migrate (mode migrate, or their own cluster.evacuate) go, running or not;
// of the others every running one is stopped, stopped ones are left alone (their
// restore must not start them).
func planEvacuation(insts []evacuee, mode string) []evacuationStep {
	var steps []evacuationStep
	for _, inst := range insts {
		action := mode
		if action == "" {
			action = inst.Action
		}

		switch {
		case action == evacuateMigrate || action == evacuateAuto:
			steps = append(steps, evacuationStep{Key: inst.Key, Stop: inst.Running, Migrate: true, Auto: action == evacuateAuto})
		case inst.Running:
			steps = append(steps, evacuationStep{Key: inst.Key, Stop: true})
		}
	}

	sort.Slice(steps, func(i, j int) bool { return steps[i].Key < steps[j].Key })
	return steps
}

// planRestore lists, in key order, the instances restore starts: those this member's
// evacuation stopped while running, not running now. It also returns every instance
// whose evacuation keys it clears.
func planRestore(member string, insts []evacuee) (start, clear []string) {
	for _, inst := range insts {
		if inst.Config[keyEvacuateOrigin] != member {
			continue
		}

		clear = append(clear, inst.Key)
		if !inst.Running && (inst.Config[keyEvacuateRunning] == "true" || inst.Config[keyLastStatePower] == "RUNNING") {
			start = append(start, inst.Key)
		}
	}

	sort.Strings(start)
	sort.Strings(clear)
	return start, clear
}

// evacuate marks member evacuated first (from then on placement passes it over), then
// stops or moves its instances one by one. A failure on one instance does not stop the
// others: all are tried and the failures returned together; the member stays marked
// evacuated, and evacuating again is refused until it is restored, as in LXD. Mode
// migrate with no other member to take the instances fails before anything changes.
func (e *evacuator) evacuate(ctx context.Context, member, mode string) error {
	if mode == evacuateMigrate {
		_, err := e.host.Place(ctx, member)
		if err != nil {
			return fmt.Errorf("evacuating cluster member %q (mode migrate): %w", member, err)
		}
	}

	err := e.host.SetEvacuated(ctx, member, true)
	if err != nil {
		return fmt.Errorf("marking cluster member %q evacuated: %w", member, err)
	}

	insts, err := e.host.LocalInstances(ctx)
	if err != nil {
		return err
	}

	byKey := map[string]evacuee{}
	for _, inst := range insts {
		byKey[inst.Key] = inst
	}

	var errs []error
	moved := 0
	for _, step := range planEvacuation(insts, mode) {
		inst := byKey[step.Key]
		var target cluster.Member
		if step.Migrate {
			target, err = e.host.Place(ctx, member)
			if err != nil && !step.Auto {
				errs = append(errs, fmt.Errorf("instance %q: %w", step.Key, err))
				continue
			}

			if err != nil {
				e.log.Info("evacuation: no member to move the instance to, stopping it", "instance", step.Key, "err", err)
				step.Migrate = false
				if !step.Stop {
					continue
				}
			}
		}

		err := e.evacuateOne(ctx, member, inst, step, target)
		if err != nil {
			errs = append(errs, err)
		} else if step.Migrate {
			moved++
		}
	}

	if len(errs) > 0 {
		return fmt.Errorf("evacuating cluster member %q: %w", member, errors.Join(errs...))
	}

	e.log.Info("cluster member evacuated", "member", member, "mode", mode, "moved", moved)
	return nil
}

// evacuateOne stops (if running) and, for a migration, moves one instance to target and
// starts it there if it was running.
func (e *evacuator) evacuateOne(ctx context.Context, member string, inst evacuee, step evacuationStep, target cluster.Member) error {
	// Recorded before the stop or move: should the daemon die halfway, restore still
	// knows that this evacuation stopped or moved it.
	set := map[string]string{keyEvacuateOrigin: member}
	if step.Stop {
		set[keyEvacuateRunning] = "true"
	}

	err := e.host.SetConfig(ctx, step.Key, set, nil)
	if err != nil {
		return fmt.Errorf("instance %q: %w", step.Key, err)
	}

	if step.Stop {
		err = e.host.Stop(ctx, step.Key, inst.Timeout, false)
		if err != nil && !api.StatusErrorCheck(err, http.StatusBadRequest) {
			e.log.Warn("evacuation: clean shutdown failed, stopping by force", "instance", step.Key, "err", err)
			err = e.host.Stop(ctx, step.Key, 0, true)
		}

		if err != nil && !api.StatusErrorCheck(err, http.StatusBadRequest) {
			return fmt.Errorf("stopping instance %q: %w", step.Key, err)
		}

		// LXD's record that it was running (the stop itself wrote STOPPED).
		err = e.host.SetConfig(ctx, step.Key, map[string]string{keyLastStatePower: "RUNNING"}, nil)
		if err != nil {
			return fmt.Errorf("instance %q: %w", step.Key, err)
		}
	}

	if !step.Migrate {
		return nil
	}

	err = e.host.Move(ctx, step.Key, target)
	if err != nil {
		// It stays here, stopped, recorded: restore starts it again.
		return fmt.Errorf("moving instance %q to cluster member %q: %w", step.Key, target.Name, err)
	}

	if step.Stop {
		err = e.host.StartOn(ctx, step.Key, target)
		if err != nil {
			return fmt.Errorf("starting instance %q on cluster member %q: %w", step.Key, target.Name, err)
		}
	}

	return nil
}

// restore clears the mark (placement may use the member again), then starts what the
// evacuation stopped and clears its keys. An instance that fails to start is named in
// the error for the admin to start by hand; the others are started regardless.
func (e *evacuator) restore(ctx context.Context, member string) error {
	err := e.host.SetEvacuated(ctx, member, false)
	if err != nil {
		return fmt.Errorf("clearing the evacuation of cluster member %q: %w", member, err)
	}

	// What went elsewhere comes back first (stopped); then it is started below with
	// what was stopped here.
	var errs []error
	moved, err := e.host.Moved(ctx, member)
	if err != nil {
		return err
	}

	sort.Slice(moved, func(i, j int) bool { return moved[i].Key < moved[j].Key })
	for _, mv := range moved {
		err := e.host.MoveBack(ctx, mv.Key, mv.Member, member)
		if err != nil {
			errs = append(errs, fmt.Errorf("moving instance %q back from cluster member %q: %w", mv.Key, mv.Member, err))
		}
	}

	insts, err := e.host.LocalInstances(ctx)
	if err != nil {
		return err
	}

	start, clear := planRestore(member, insts)
	for _, key := range start {
		err := e.host.Start(ctx, key)
		if err != nil && !api.StatusErrorCheck(err, http.StatusBadRequest) {
			errs = append(errs, fmt.Errorf("starting instance %q: %w", key, err))
		}
	}

	for _, key := range clear {
		err := e.host.SetConfig(ctx, key, nil, []string{keyEvacuateOrigin, keyEvacuateRunning})
		if err != nil {
			errs = append(errs, fmt.Errorf("instance %q: %w", key, err))
		}
	}

	if len(errs) > 0 {
		return fmt.Errorf("restoring cluster member %q: %w", member, errors.Join(errs...))
	}

	e.log.Info("cluster member restored", "member", member, "moved_back", len(moved), "started", len(start))
	return nil
}

// daemonEvacuationHost is evacuationHost over the daemon's database and instances.
type daemonEvacuationHost struct{ d *Daemon }

func (h daemonEvacuationHost) LocalInstances(ctx context.Context) ([]evacuee, error) {
	self := h.d.evacuationCluster().Self()
	var rows []db.Instance
	err := h.d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetInstancesWhere(ctx, db.InstanceFilter{MemberID: self.ID})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the instances of cluster member %q: %w", self.Name, err)
	}

	out := make([]evacuee, 0, len(rows))
	for _, row := range rows {
		inst, err := h.d.instances.Get(ctx, row.Name, false)
		if err != nil {
			return nil, fmt.Errorf("reading instance %q: %w", row.Name, err)
		}

		out = append(out, evacuee{Key: row.Name, Running: inst.StatusCode != api.Stopped, Config: row.Config,
			Timeout: shutdownTimeout(inst.ExpandedConfig), Action: evacuationAction(inst.ExpandedConfig, inst.ExpandedDevices)})
	}

	return out, nil
}

// shutdownTimeout is boot.host_shutdown_timeout (seconds, at most an hour), LXD's
// clean-shutdown budget when the host stops an instance; -1 (Stop's default, 30 s) when
// unset, unusable or negative.
func shutdownTimeout(config map[string]string) time.Duration {
	d := instance.HostShutdownTimeout(config)
	if d == nil {
		return -1
	}

	return *d
}

func (h daemonEvacuationHost) SetEvacuated(ctx context.Context, member string, evacuated bool) error {
	err := h.d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.SetMemberEvacuated(ctx, member, evacuated)
	})
	if err == nil && evacuated {
		// The daemon's start may be autostarting instances: one it starts now would not
		// be in the list the evacuation takes next.
		h.d.instances.AutostartBarrier()
	}

	return err
}

func (h daemonEvacuationHost) Stop(ctx context.Context, key string, timeout time.Duration, force bool) error {
	return h.d.instances.Stop(ctx, key, timeout, force)
}

func (h daemonEvacuationHost) Start(ctx context.Context, key string) error {
	return h.d.instances.Start(ctx, key)
}

func (h daemonEvacuationHost) SetConfig(ctx context.Context, key string, set map[string]string, unset []string) error {
	return h.d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstanceConfig(ctx, key, set, unset)
	})
}

// selfEvacuated reports whether this member is evacuated: its instances are not autostarted
// then (they stay stopped until restore, as in LXD).
func (d *Daemon) selfEvacuated(ctx context.Context) bool {
	c := d.evacuationCluster()
	if c == nil || !c.Enabled() {
		return false
	}

	self := c.Self()
	m, err := c.Member(ctx, self.Name)
	if err != nil {
		d.log.Warn("reading whether this member is evacuated", "err", err)
		return false
	}

	return m.Evacuated
}
