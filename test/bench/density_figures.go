package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/testutil"
)

// densityAnswerRuns is how many samples each list figure takes (after one warm-up);
// densityExecRuns the same for exec.
func densityAnswerRuns() int { return max(2**runs, 10) }
func densityExecRuns() int   { return max(4**runs, 20) }

// unixHTTP is an HTTP client of the daemon's unix socket, one connection per request as
// the berth CLI has.
func unixHTTP(dir string) *http.Client {
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(dir, "unix.socket"))
		},
	}}
}

// get reads path whole and decodes the envelope's metadata into out (if not nil).
func (d *density) get(path string, out any) error {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, "http://unix.socket"+path, nil)
	if err != nil {
		return err
	}

	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}

	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}

	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, clipText(string(body), 200))
	}

	if out == nil {
		return nil
	}

	var env struct {
		Metadata json.RawMessage `json:"metadata"`
	}

	err = json.Unmarshal(body, &env)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}

	return json.Unmarshal(env.Metadata, out)
}

// answerFigures are the rows of answers, by number running.
var answerFigures = []string{
	"density: GET /1.0/instances?recursion=2, %d running",
	"density: GET /1.0/instances?recursion=1, %d running",
	"density: berth list, %d running",
	"density: berth exec NAME -- true, %d running",
}

const adoptionFigure = "density: berthd killed, restarted -> API lists %d RUNNING"

// answers times the list calls with the running containers of names, and `berth exec
// NAME -- true` into one of them (its exec server started by a first exec).
func (d *density) answers(names []string, execName string) error {
	n := len(names)
	fmt.Fprintf(os.Stderr, "density: list and exec with %d running\n", n)

	// Every one must be running, or the figure is not for n running.
	var insts []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}

	err := d.get("/1.0/instances?recursion=1", &insts)
	if err != nil {
		return err
	}

	running := 0
	for _, i := range insts {
		if i.Status == "Running" {
			running++
		}
	}

	if running != n || len(insts) != n {
		return fmt.Errorf("%d instances, %d running, want %d running", len(insts), running, n)
	}

	for i, path := range []string{"/1.0/instances?recursion=2", "/1.0/instances?recursion=1"} {
		err := d.sample(fmt.Sprintf(answerFigures[i], n), densityAnswerRuns(), func() error {
			return d.get(path, nil)
		})
		if err != nil {
			return err
		}
	}

	err = d.sample(fmt.Sprintf(answerFigures[2], n), densityAnswerRuns(), func() error {
		_, err := d.b.berthCtx(d.ctx, "list")
		return err
	})
	if err != nil {
		return err
	}

	return d.sample(fmt.Sprintf(answerFigures[3], n), densityExecRuns(), func() error {
		_, err := d.b.berthCtx(d.ctx, "exec", execName, "--", "true")
		return err
	})
}

// sample runs f once to warm up, then times it k times into figure.
func (d *density) sample(figure string, k int, f func() error) error {
	err := f()
	if err != nil {
		return fmt.Errorf("%s: %w", figure, err)
	}

	for range k {
		t0 := time.Now()
		err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", figure, err)
		}

		d.r.add(figure, time.Since(t0))
	}

	return nil
}

// adoption kills berthd (SIGKILL, as a crash), starts it again and times until the API
// lists every container RUNNING, -runs times.
func (d *density) adoption() error {
	figure := fmt.Sprintf(adoptionFigure, d.n)
	for i := 0; i < *runs; i++ {
		fmt.Fprintf(os.Stderr, "density: restart %d of berthd with %d running\n", i+1, d.n)
		_ = d.b.cmd.Process.Signal(syscall.SIGKILL)
		_ = d.b.cmd.Wait()
		d.b.cmd = nil

		t0 := time.Now()
		err := d.b.start()
		if err != nil {
			return err
		}

		for {
			if d.allRunning() {
				break
			}

			if time.Since(t0) > 5*time.Minute {
				return fmt.Errorf("berthd restarted: not every container listed RUNNING after %s", time.Since(t0).Round(time.Second))
			}

			err := sleepCtx(d.ctx, 5*time.Millisecond)
			if err != nil {
				return err
			}
		}

		d.r.add(figure, time.Since(t0))
	}

	return nil
}

// allRunning says whether the API answers with d.n instances, all RUNNING.
func (d *density) allRunning() bool {
	var insts []struct {
		Status string `json:"status"`
	}

	err := d.get("/1.0/instances?recursion=1", &insts)
	if err != nil || len(insts) != d.n {
		return false
	}

	for _, i := range insts {
		if i.Status != "Running" {
			return false
		}
	}

	return true
}

// systemdState waits for systemd in a running instance to finish booting and returns
// its word for the outcome ("running", "degraded", ...).
func (d *density) systemdState(name string) (string, error) {
	var st struct {
		Pid int `json:"pid"`
	}

	err := d.get("/1.0/instances/"+name+"/state", &st)
	if err != nil {
		return "", err
	}

	if st.Pid <= 0 {
		return "", fmt.Errorf("%s has no init pid", name)
	}

	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Minute)
	defer cancel()
	s, err := testutil.WaitSystemd(ctx, st.Pid)
	if err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}

	if s == "degraded" {
		return s + ": failed " + d.failedUnits(st.Pid), nil
	}

	return s, nil
}

// failedUnits names the units that left a container degraded (a loaded host times
// some out).
func (d *density) failedUnits(pid int) string {
	cmd := exec.CommandContext(d.ctx, "nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "--",
		"systemctl", "--failed", "--no-legend", "--plain")
	out, _ := cmd.CombinedOutput()
	units := []string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			units = append(units, f[0])
		}
	}

	return strings.Join(units, " ")
}

// berthCtx runs the CLI against b, cancelled with ctx.
func (b *berthd) berthCtx(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, absBin(b.bin, "berth"), args...)
	cmd.Env = append(os.Environ(), "BERTH_DIR="+b.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("berth %s: %w: %s", strings.Join(args, " "), err, trim(string(out)))
	}

	return string(out), nil
}
