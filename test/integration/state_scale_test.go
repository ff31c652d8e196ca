package integration

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scaleN is how many containers the scale checks of the state run: enough that a cost per
// instance shows in the counts below.
const scaleN = 10

// Reading many running instances asks none of their monitors: recursion=2 (what berth list
// and lxc list send), recursion=1, one instance's state and exec all answer from the
// daemon's own records and the host. A restart adopts every running instance with one
// round trip to its monitor and nothing more, and finds each as it was.
func TestListAndRestartAskNoMonitor(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	names := make([]string, scaleN)
	var wg sync.WaitGroup
	errs := make(chan error, scaleN)
	sem := make(chan struct{}, 4)
	for i := range names {
		names[i] = fmt.Sprintf("sc%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := d.berthErr("launch", "debian/12", names[i])
			if err != nil {
				errs <- fmt.Errorf("launch %s: %w\n%s", names[i], err, out)
			}
		}()
	}

	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The others' addresses are compared across the restart as they are by then: booting
	// ten at once on a busy machine, some may not have one yet.
	d.waitIPv4("sc0", 60*time.Second)
	pids := map[string]int{}
	addrs := map[string]string{}
	for _, n := range names {
		pids[n] = d.initPID(n)
		addrs[n] = d.ipv4Of(n)
	}

	get := func(path string) string {
		t.Helper()
		code, env := d.raw("GET", path, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, env.Error)
		}

		return string(env.Metadata)
	}

	calls := d.monitorCalls()
	for range 3 {
		get("/1.0/instances?recursion=2")
		get("/1.0/instances?recursion=1")
		get("/1.0/instances/sc0?recursion=1")
		get("/1.0/instances/sc1/state")
		out := d.berth("list", "--format", "csv", "-c", "ns4")
		for _, n := range names {
			if !strings.Contains(out, n+",RUNNING,") {
				t.Fatalf("berth list lacks running %s:\n%s", n, out)
			}
		}

		d.berth("exec", "sc2", "--", "true")
		time.Sleep(300 * time.Millisecond) // some answers from the cache, some gathered
	}

	if got := d.monitorCalls() - calls; got != 0 {
		t.Fatalf("reading %d running instances (lists, states, exec) made %d requests to monitors, want 0", scaleN, got)
	}

	// Restart: every instance adopted with its one watch connection, nothing else asked.
	d.kill(syscall.SIGTERM)
	t0 := time.Now()
	d.start()
	took := time.Since(t0)
	t.Logf("restart adopting %d running instances: %s to the first answer", scaleN, took.Round(time.Millisecond))
	if got := d.monitorCalls(); got != scaleN {
		t.Fatalf("adopting %d instances made %d requests to monitors, want one each", scaleN, got)
	}

	if took > 10*time.Second {
		t.Fatalf("restart with %d running instances took %s", scaleN, took)
	}

	body := get("/1.0/instances?recursion=2")
	for _, n := range names {
		if got := d.initPID(n); got != pids[n] {
			t.Fatalf("%s's init was %d before the restart and is %d after", n, pids[n], got)
		}

		if addrs[n] != "" && d.ipv4Of(n) != addrs[n] {
			t.Fatalf("%s had address %s before the restart and %q after", n, addrs[n], d.ipv4Of(n))
		}
	}

	if strings.Count(body, `"status":"Running"`) < scaleN {
		t.Fatalf("after the restart recursion=2 lists fewer than %d running instances:\n%.2000s", scaleN, body)
	}

	if got := d.monitorCalls(); got != scaleN {
		t.Fatalf("reading the adopted instances made %d more requests to monitors", got-scaleN)
	}

	// A stop the daemon did not ask for (here init killed: a poweroff inside would wait for
	// the boot of a busy machine) is recorded, for an adopted instance and for one this
	// daemon started: the monitor handle's watch runs the record.
	for _, how := range []string{"adopted", "started"} {
		if how == "started" {
			d.berth("start", "sc9")
		}

		err := syscall.Kill(d.initPID("sc9"), syscall.SIGKILL)
		if err != nil {
			t.Fatal(err)
		}

		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(d.berth("list", "--format", "csv", "-c", "ns", "sc9"), "sc9,STOPPED") {
			if time.Now().After(deadline) {
				t.Fatalf("sc9 (%s) powered off inside is not recorded as stopped", how)
			}

			time.Sleep(100 * time.Millisecond)
		}
	}
}
