package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

func autostartInst(project, name string, config map[string]string) api.InstanceFull {
	var i api.InstanceFull
	i.Name, i.Project, i.ExpandedConfig = name, project, config
	return i
}

// LXD's rule picks who starts (boot.autostart true, or unset and last running), and the
// order is boot.autostart.priority, highest first, then the name.
func TestAutostartOrder(t *testing.T) {
	running := "RUNNING"
	list := []api.InstanceFull{
		autostartInst("default", "b-was-running", map[string]string{"volatile.last_state.power": running}),
		autostartInst("default", "a-was-stopped", map[string]string{"volatile.last_state.power": "STOPPED"}),
		autostartInst("default", "c-always", map[string]string{"boot.autostart": "true"}),
		autostartInst("default", "d-never", map[string]string{"boot.autostart": "false", "volatile.last_state.power": running}),
		autostartInst("default", "e-first", map[string]string{"boot.autostart": "1", "boot.autostart.priority": "10"}),
		autostartInst("default", "f-last", map[string]string{"boot.autostart.priority": "-5", "volatile.last_state.power": running}),
		autostartInst("p2", "b-was-running", map[string]string{"volatile.last_state.power": running}),
		autostartInst("default", "g-empty-is-unset", map[string]string{"boot.autostart": "", "volatile.last_state.power": running}),
		autostartInst("default", "h-never-run", map[string]string{}),
	}

	got := []string{}
	for _, i := range autostartOrder(list) {
		got = append(got, i.Project+"/"+i.Name)
	}

	want := []string{
		"default/e-first",
		"default/b-was-running",
		"p2/b-was-running",
		"default/c-always",
		"default/g-empty-is-unset",
		"default/f-last",
	}

	if !reflect.DeepEqual(got, want) {
		t.Fatalf("autostart order:\n%q\nwant:\n%q", got, want)
	}
}

func TestAutostartDelay(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "-2": 0, "x": 0} {
		if got := autostartDelay(map[string]string{"boot.autostart.delay": v}); got != want {
			t.Errorf("delay %q = %s, want %s", v, got, want)
		}
	}
}

// A container that went down while meant to run (no record: a power loss; a stop on the
// monitor's own SIGTERM: the host's shutdown; a signal from elsewhere) keeps its last
// state; one that stopped itself or was stopped on request does not.
func TestStoppedItself(t *testing.T) {
	cases := []struct {
		exit *container.Exit
		want bool
	}{
		{nil, false},
		{&container.Exit{Reason: "poweroff", Signal: 2}, true},
		{&container.Exit{Reason: "poweroff", Signal: 2, Term: true}, false},
		{&container.Exit{Reason: "poweroff", Signal: 2, Term: true, Requested: true}, true},
		{&container.Exit{Reason: "exit"}, true},
		{&container.Exit{Reason: "killed", Killed: true}, true},
		{&container.Exit{Reason: "signal", Signal: 9}, false},
		{&container.Exit{Reason: "reboot", Reboot: true}, false},
		// A stop asked for during a reboot inside ends as a reboot, or killed.
		{&container.Exit{Reason: "reboot", Reboot: true, Requested: true}, true},
		{&container.Exit{Reason: "signal", Signal: 9, Requested: true}, true},
	}

	for _, c := range cases {
		if got := stoppedItself(c.exit); got != c.want {
			t.Errorf("stoppedItself(%+v) = %v, want %v", c.exit, got, c.want)
		}
	}
}

// The autostart pass reads each instance again just before starting it: one stopped,
// reconfigured, moved to another member or deleted since the pass listed it is left
// alone, and an evacuation under way ends the pass.
func TestAutostartRereadsBeforeStarting(t *testing.T) {
	ctx := context.Background()
	d, dir := stateDB(t)
	err := d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		other, err := tx.ClusterMemberAdd(ctx, db.MemberRow{Name: "m2", Address: "10.251.0.2:8443"})
		if err != nil {
			return err
		}

		for i, n := range []string{"was", "now-off", "moved", "wants"} {
			config := map[string]string{"volatile.last_state.power": "RUNNING", "boot.autostart.delay": "7",
				"volatile.idmap.base": fmt.Sprint(1065536 * (i + 1))}
			member := int64(0)
			if n == "moved" { // moved to another member since the listing
				member = other
			}

			_, err := tx.CreateInstance(ctx, db.Instance{Name: n, Type: "container", Config: config, MemberID: member})
			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	m := NewManager(Config{Dir: dir, DB: d, Pools: fakePools{"default": noStartPool{&recordPool{}}}, PoolName: "default",
		Log: slog.New(slog.DiscardHandler), MemberID: db.SelfMemberID})
	ru := m.Runner()

	// After the listing: was is stopped (its last state written), now-off gets
	// boot.autostart=false, a fifth is deleted.
	err = d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.UpdateInstanceConfig(ctx, "was", map[string]string{"volatile.last_state.power": "STOPPED"}, nil)
		if err != nil {
			return err
		}

		return tx.UpdateInstanceConfig(ctx, "now-off", map[string]string{"boot.autostart": "false"}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}

	running := func(context.Context) bool { return false }
	for _, n := range []string{"was", "now-off", "moved"} {
		delay, err := ru.autostartStart(ctx, n, running)
		if delay >= 0 || err != nil {
			t.Errorf("autostartStart(%s) = %s, %v; want it left alone", n, delay, err)
		}
	}

	t0 := time.Now()
	delay, err := ru.autostartOne(ctx, "gone", running)
	if delay >= 0 || err != nil || time.Since(t0) >= autostartRetry {
		t.Errorf("autostartOne(gone) = %s, %v after %s; want it left alone at once", delay, err, time.Since(t0))
	}

	evacuating := func(context.Context) bool { return true }
	_, err = ru.autostartStart(ctx, "wants", evacuating)
	if !errors.Is(err, errAutostartPaused) {
		t.Errorf("autostartStart(wants) on an evacuating member = %v, want paused", err)
	}

	// Positive control: one still to start is started (and fails here: no storage).
	_, err = ru.autostartStart(ctx, "wants", running)
	if err == nil || !strings.Contains(err.Error(), "no storage in this test") {
		t.Errorf("autostartStart(wants) = %v; want a start tried", err)
	}
}

// noStartPool is a pool where every start fails at its first step.
type noStartPool struct{ *recordPool }

func (noStartPool) RootQuota(string) error { return errors.New("no storage in this test") }

// An evacuation records the member evacuated, then waits out an autostart's start under
// way (AutostartBarrier) before it lists what runs: the barrier returns only once that
// start has ended, and the next start sees the evacuation.
func TestAutostartBarrier(t *testing.T) {
	ctx := context.Background()
	ru := lastRunningManager(t, "c1").Runner()

	var evacuated atomic.Bool
	inStart, release := make(chan struct{}), make(chan struct{})
	paused := func(context.Context) bool {
		v := evacuated.Load()
		if !v {
			close(inStart) // this start is under way, the evacuation not yet seen: hold it
			<-release
		}

		return v
	}

	started := make(chan error, 1)
	go func() {
		_, err := ru.autostartStart(ctx, "c1", paused)
		started <- err
	}()

	<-inStart
	evacuated.Store(true)
	barrier := make(chan struct{})
	go func() {
		ru.AutostartBarrier()
		close(barrier)
	}()

	select {
	case <-barrier:
		t.Fatal("AutostartBarrier returned while a start was under way")
	case <-time.After(100 * time.Millisecond):
	}

	close(release)
	<-barrier
	if err := <-started; err == nil || errors.Is(err, errAutostartPaused) {
		t.Errorf("the start under way = %v, want it tried (and failed: no storage)", err)
	}

	_, err := ru.autostartStart(ctx, "c1", paused)
	if !errors.Is(err, errAutostartPaused) {
		t.Errorf("a start after the barrier = %v, want paused", err)
	}
}

// A running instance (its monitor adopted) is passed over without its lock or a read:
// at a start with hundreds running, the pass took each lock and read each instance twice
// beside the daemon's first requests. Its lock is held here, so a pass that took it would
// not end.
func TestAutostartSkipsRunning(t *testing.T) {
	ctx := context.Background()
	m := lastRunningManager(t, "up")
	m.setMonitor("up", &container.Monitor{})
	unlock := m.lock("up")
	defer unlock()

	var asked atomic.Int32
	paused := func(context.Context) bool { asked.Add(1); return false }
	done := make(chan error, 1)
	go func() { done <- m.Runner().Autostart(ctx, paused) }()

	select {
	case err := <-done:
		if err != nil || asked.Load() != 0 {
			t.Errorf("Autostart = %v after %d evacuation checks; want nil and none", err, asked.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Autostart waited for a running instance's lock")
	}
}

// lastRunningManager is a Manager over a database holding one instance, name, whose last
// state is RUNNING, on a pool where every start fails at its first step.
func lastRunningManager(t *testing.T, name string) *Manager {
	t.Helper()
	d, dir := stateDB(t)
	err := d.Transaction(context.Background(), func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstance(ctx, db.Instance{Name: name, Type: "container",
			Config: map[string]string{"volatile.last_state.power": "RUNNING", "volatile.idmap.base": "1065536"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	return NewManager(Config{Dir: dir, DB: d, Pools: fakePools{"default": noStartPool{&recordPool{}}}, PoolName: "default",
		Log: slog.New(slog.DiscardHandler), MemberID: db.SelfMemberID})
}
