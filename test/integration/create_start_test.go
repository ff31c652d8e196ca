package integration

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestCreateWithStart: POST /1.0/instances with start (Incus's instance_create_start,
// which berthd advertises, so newer lxc and incus clients send it with every create)
// starts what it makes, from an image by alias and from a copy (berth copy --start); its
// operation says it made the instance. (A copy between servers with start is in
// TestMigrateModes.) A start that fails fails the operation and leaves the instance stopped, as
// Incus does; berth launch, which uses the one request, then deletes it, and says why.
func TestCreateWithStart(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	ctx := t.Context()

	has, err := d.c.HasExtension(ctx, "instance_create_start")
	if err != nil || !has {
		t.Fatalf("instance_create_start not advertised: %v", err)
	}

	create := func(req api.InstancesPost) (map[string]any, error) {
		req.Start = true
		op, err := d.c.LaunchInstance(ctx, req)
		if err != nil {
			return nil, err
		}

		err = op.Wait(ctx)
		return op.Metadata, err
	}

	md, err := create(api.InstancesPost{Name: "cs1", Source: api.InstanceSource{Type: "image", Alias: "debian/12"}})
	if err != nil {
		t.Fatalf("create with start from an image: %v", err)
	}

	if md[api.OperationInstanceCreated] != true {
		t.Errorf("operation metadata %v: no %s", md, api.OperationInstanceCreated)
	}

	if s := d.waitRunning("cs1"); s != "running" {
		t.Errorf("cs1: is-system-running = %q", s)
	}

	// A new instance's NIC gets its MAC with the create (as in LXD), and its start uses it.
	d.berth("init", "debian/12", "cs5")
	inst5, _, err := d.c.GetInstance(ctx, "cs5")
	if err != nil || !strings.HasPrefix(inst5.Config["volatile.eth0.hwaddr"], "00:16:3e:") {
		t.Errorf("cs5 after berth init: no volatile.eth0.hwaddr: %v %v", inst5.Config, err)
	}

	inst1, _, err := d.c.GetInstance(ctx, "cs1")
	st1, serr := d.c.GetInstanceState(ctx, "cs1")
	if err != nil || serr != nil || inst1.Config["volatile.eth0.hwaddr"] == "" || st1.Network["eth0"].Hwaddr != inst1.Config["volatile.eth0.hwaddr"] {
		t.Errorf("cs1's eth0 has MAC %q, its record %q (%v, %v)", st1.Network["eth0"].Hwaddr, inst1.Config["volatile.eth0.hwaddr"], err, serr)
	}

	// berth copy --start: the copy's request carries start.
	d.berth("stop", "cs1")
	d.berth("copy", "cs1", "cs2", "--start")
	if s := d.waitRunning("cs2"); s != "running" {
		t.Errorf("cs2, a copy made with start: is-system-running = %q", s)
	}

	// The copy's MAC is its own, made with its row.
	inst2, _, err := d.c.GetInstance(ctx, "cs2")
	if err != nil || inst2.Config["volatile.eth0.hwaddr"] == "" || inst2.Config["volatile.eth0.hwaddr"] == inst1.Config["volatile.eth0.hwaddr"] {
		t.Errorf("cs2's MAC %q, its source's %q (%v)", inst2.Config["volatile.eth0.hwaddr"], inst1.Config["volatile.eth0.hwaddr"], err)
	}

	// A refresh with start (lxc copy --refresh): the stopped copy is brought up to date
	// and started; the operation made no instance, and says nothing of the kind.
	d.berth("stop", "cs2")
	md, err = create(api.InstancesPost{Name: "cs2", Source: api.InstanceSource{Type: "copy", Source: "cs1", Refresh: true}})
	if err != nil || md[api.OperationInstanceCreated] != nil {
		t.Errorf("refresh with start: %v, metadata %v", err, md)
	}

	if s := d.waitRunning("cs2"); s != "running" {
		t.Errorf("cs2, refreshed with start: is-system-running = %q", s)
	}

	// CPUs this host does not have: accepted with the create, refused by the start.
	n := runtime.NumCPU()
	offline := fmt.Sprintf("%d-%d", n+4, n+5)
	md, err = create(api.InstancesPost{Name: "cs3", Source: api.InstanceSource{Type: "image", Alias: "debian/12"},
		InstancePut: api.InstancePut{Config: map[string]string{"limits.cpu": offline}}})
	if err == nil || !strings.Contains(err.Error(), "not online") {
		t.Fatalf("create with a start that must fail: %v", err)
	}

	if md[api.OperationInstanceCreated] != true {
		t.Errorf("the failed start's operation metadata %v: no %s", md, api.OperationInstanceCreated)
	}

	inst, _, err := d.c.GetInstance(ctx, "cs3")
	if err != nil || inst.StatusCode != api.Stopped {
		t.Errorf("cs3 after its failed start: %+v, %v", inst, err)
	}

	out, err := d.berthErr("launch", "debian/12", "cs4", "-c", "limits.cpu="+offline)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err == nil || !strings.HasPrefix(lines[len(lines)-1], "Error: ") || !strings.HasSuffix(out, "(cs4 was deleted again)\n") {
		t.Errorf("berth launch with a failing start: %v\n%s", err, out)
	}

	_, _, err = d.c.GetInstance(ctx, "cs4")
	if !api.StatusErrorCheck(err, 404) {
		t.Errorf("cs4 after the failed launch: %v", err)
	}
}
