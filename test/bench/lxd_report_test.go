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
		"LXD: snapshot, running, 300 MB written",
		"LXD: restore, running",
		"LXD: copy, running, 300 MB written",
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
		"LXD: snapshot, running, 300 MB written",
		"restore, running (kill, swap, start)",
		"LXD: restore, running",
		// No Berth copy figure: last.
		"LXD: copy, running, 300 MB written",
	}

	if !reflect.DeepEqual(r.names, want) {
		t.Fatalf("rows:\n%q\nwant:\n%q", r.names, want)
	}
}

// LXD's boot rows and ratios pair with Berth's lifecycle and parallel rows, each list on
// its own.
func TestPlaceLXDBootRows(t *testing.T) {
	r := &report{}
	for _, what := range []string{"launch", "start", "LXD: launch", "LXD: start"} {
		r.addBoot(what, 0, boot{userspace: time.Millisecond, finish: 10 * time.Millisecond})
	}

	r.addAtOnce("", atOnce{})
	r.addAtOnce("LXD: ", atOnce{})

	placeLXDRows(r)
	want := []string{
		"launch -> systemd starts",
		"LXD: launch -> systemd starts",
		"launch -> running (systemd's finish)",
		"LXD: launch -> running (systemd's finish)",
		"launch: systemd userspace boot (systemd-analyze)",
		"LXD: launch: systemd userspace boot (systemd-analyze)",
		"start -> systemd starts",
		"LXD: start -> systemd starts",
		"start -> running (systemd's finish)",
		"LXD: start -> running (systemd's finish)",
		"start: systemd userspace boot (systemd-analyze)",
		"LXD: start: systemd userspace boot (systemd-analyze)",
		"10 parallel launches (last command returns)",
		"LXD: 10 parallel launches (last command returns)",
		"10 parallel launches -> all running",
		"LXD: 10 parallel launches -> all running",
		parallelBootsRow,
		"LXD: " + parallelBootsRow,
		parallelFloorRow,
		"LXD: " + parallelFloorRow,
		parallelOutsideRow,
		"LXD: " + parallelOutsideRow,
	}

	if !reflect.DeepEqual(r.names, want) {
		t.Fatalf("rows:\n%q\nwant:\n%q", r.names, want)
	}

	wantRatios := []string{
		"launch -> running / systemd userspace boot",
		"LXD: launch -> running / systemd userspace boot",
		"start -> running / systemd userspace boot",
		"LXD: start -> running / systemd userspace boot",
	}

	if !reflect.DeepEqual(r.rnames, wantRatios) {
		t.Fatalf("ratios:\n%q\nwant:\n%q", r.rnames, wantRatios)
	}
}
