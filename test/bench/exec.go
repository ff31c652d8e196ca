package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// execRuns is how many round trips each exec figure takes (issue 3: median of 50).
const execRuns = 50

// benchExec measures `true` run inside a running container, end to end:
// through the berth CLI, Debian's stock lxc, and the Go client alone (no
// process start on the client side). Failures become notes.
func benchExec(b *berthd, r *report) {
	err := runExecBench(b, r)
	if err != nil {
		r.note("exec: %v", err)
	}
}

func runExecBench(b *berthd, r *report) error {
	const name = "bx"

	_, err := b.berth("launch", "debian/12", name)
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("delete", "-f", name) }()

	_, err = b.waitInstance(name)
	if err != nil {
		return err
	}

	// The first exec of a container also starts its exec server.
	berth := exec.Command(absBin(b.bin, "berth"), "exec", name, "--", "true")
	berth.Env = append(os.Environ(), "BERTH_DIR="+b.dir)
	t0 := time.Now()

	out, err := berth.CombinedOutput()
	if err != nil {
		return fmt.Errorf("first exec: %w: %s", err, trim(string(out)))
	}

	r.add("berth exec NAME -- true, first (server start)", time.Since(t0))

	err = timeCommand(r, "berth exec NAME -- true", exec.Command(absBin(b.bin, "berth"), "exec", name, "--", "true"),
		"BERTH_DIR="+b.dir)
	if err != nil {
		return err
	}

	lxc, lerr := exec.LookPath("lxc")
	if lerr == nil {
		conf, err := os.MkdirTemp("", "bench-lxc-")
		if err != nil {
			return err
		}

		defer func() { _ = os.RemoveAll(conf) }()

		env := []string{"LXD_DIR=" + b.dir, "LXD_CONF=" + conf}
		first := exec.Command(lxc, "list")
		first.Env = append(os.Environ(), env...)
		_ = first.Run() // a fresh LXD_CONF only prints a welcome hint

		err = timeCommand(r, "lxc exec NAME -- true (stock lxc vs berthd)", exec.Command(lxc, "exec", name, "--", "true"), env...)
		if err != nil {
			return err
		}
	}

	c, err := client.Connect(filepath.Join(b.dir, "unix.socket"))
	if err != nil {
		return err
	}

	ctx := context.Background()
	req := api.InstanceExecPost{Command: []string{"true"}, WaitForWS: true}

	for i := 0; i < execRuns; i++ {
		t0 := time.Now()

		s, err := c.ExecInstance(ctx, name, req, client.ExecArgs{})
		if err != nil {
			return err
		}

		code, err := s.Wait(ctx)
		if err != nil || code != 0 {
			return fmt.Errorf("go client exec: code %d, %v", code, err)
		}

		r.add("exec true via the Go client", time.Since(t0))
	}

	return nil
}

// timeCommand runs cmd execRuns times, expecting success.
func timeCommand(r *report, figure string, cmd *exec.Cmd, env ...string) error {
	for i := 0; i < execRuns; i++ {
		c := exec.Command(cmd.Path, cmd.Args[1:]...)
		c.Env = append(os.Environ(), env...)

		t0 := time.Now()

		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", figure, err, trim(string(out)))
		}

		r.add(figure, time.Since(t0))
	}

	return nil
}
