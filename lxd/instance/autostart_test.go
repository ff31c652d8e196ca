package instance

import (
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/container"
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
		{&container.Exit{Reason: "exit"}, true},
		{&container.Exit{Reason: "killed", Killed: true}, true},
		{&container.Exit{Reason: "setup-failed"}, true},
		{&container.Exit{Reason: "signal", Signal: 9}, false},
		{&container.Exit{Reason: "reboot", Reboot: true}, false},
	}

	for _, c := range cases {
		if got := stoppedItself(c.exit); got != c.want {
			t.Errorf("stoppedItself(%+v) = %v, want %v", c.exit, got, c.want)
		}
	}
}
