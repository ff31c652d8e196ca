package main

import (
	"reflect"
	"testing"
	"time"
)

func TestPlaceLXDRows(t *testing.T) {
	r := &report{}
	for _, n := range []string{
		"berth launch (command returns)",
		"launch -> is-system-running=running",
		"berth stop (clean, SIGRTMIN+3)",
		"berth list, 10 instances (10 running)",
		"berth list, 100 instances (10 running)",
		"berth exec NAME -- true",
		"lxc exec NAME -- true (stock lxc vs berthd)",
		"snapshot, running, 300 MB written",
		"restore, running (kill, swap, start)",
		"LXD: lxc launch (command returns)",
		"LXD: launch -> is-system-running=running",
		"LXD: lxc stop (clean)",
		"LXD: lxc list, 10 instances (10 running)",
		"LXD: lxc exec NAME -- true",
		"LXD: snapshot, running, 300 MB written (dir)",
		"LXD: restore, running (dir)",
		"LXD: copy, running, 300 MB written (dir)",
	} {
		r.add(n, time.Millisecond)
	}

	placeLXDRows(r)
	want := []string{
		"berth launch (command returns)",
		"LXD: lxc launch (command returns)",
		"launch -> is-system-running=running",
		"LXD: launch -> is-system-running=running",
		"berth stop (clean, SIGRTMIN+3)",
		"LXD: lxc stop (clean)",
		"berth list, 10 instances (10 running)",
		"LXD: lxc list, 10 instances (10 running)",
		"berth list, 100 instances (10 running)",
		"berth exec NAME -- true",
		"lxc exec NAME -- true (stock lxc vs berthd)",
		"LXD: lxc exec NAME -- true",
		"snapshot, running, 300 MB written",
		"LXD: snapshot, running, 300 MB written (dir)",
		"restore, running (kill, swap, start)",
		"LXD: restore, running (dir)",
		// No Berth copy figure: last.
		"LXD: copy, running, 300 MB written (dir)",
	}

	if !reflect.DeepEqual(r.names, want) {
		t.Fatalf("rows:\n%q\nwant:\n%q", r.names, want)
	}
}
