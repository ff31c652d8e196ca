package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/shared/atomicfile"
)

// Start spawns the container's monitor (exe __monitor RunDir) and returns
// once systemd has been exec'd as the container's init, or with the error
// that prevented it. exe is the path to re-execute: the daemon's sealed
// copy of itself (sys.SealedSelfExe).
//
// On error nothing is left running and the cgroups are gone; Spec.Unmounts
// are not touched (the caller that mounted them undoes them).
func Start(ctx context.Context, exe string, spec Spec, log *slog.Logger) (*Monitor, error) {
	return start(ctx, spec, log, func(logf *os.File) (*spawned, error) {
		return spawnMonitor(exe, spec.RunDir, logf)
	})
}

// Start is Start with the ready spare monitor (spare.go) if there is one. The caller
// refills (Refill) once the start is through.
func (s *Spares) Start(ctx context.Context, spec Spec, log *slog.Logger) (*Monitor, error) {
	return start(ctx, spec, log, func(logf *os.File) (*spawned, error) {
		if p := s.take(); p != nil {
			err := p.handOver(spec.RunDir, spec.Held)
			if err == nil {
				return p, nil
			}

			p.kill() // it died waiting
		}

		return spawnMonitor(s.exe, spec.RunDir, logf)
	})
}

// start writes the spec, has monitor give it a monitor (with logf, RunDir/monitor.log,
// for its output) and waits for the monitor's startup result.
func start(ctx context.Context, spec Spec, log *slog.Logger, monitor func(logf *os.File) (*spawned, error)) (*Monitor, error) {
	err := validateSpec(spec)
	if err != nil {
		return nil, err
	}

	log = log.With("instance", spec.Name)

	m, err := Attach(spec.RunDir)
	if err == nil {
		_ = m.Close()
		return nil, fmt.Errorf("starting %q: %w", spec.Name, ErrRunning)
	}

	err = os.MkdirAll(spec.RunDir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("creating run dir: %w", err)
	}

	// The exit record describes the previous run; it must not outlive it.
	_ = os.Remove(filepath.Join(spec.RunDir, exitFile))

	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}

	err = atomicfile.Write(filepath.Join(spec.RunDir, specFile), b, 0o600)
	if err != nil {
		return nil, err
	}

	logf, err := os.OpenFile(filepath.Join(spec.RunDir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening monitor log: %w", err)
	}

	p, err := monitor(logf)
	_ = logf.Close()

	if err != nil {
		return nil, err
	}

	defer func() { _ = p.sock.Close() }()

	res, err := readStartResult(ctx, p.sock)
	if err != nil {
		// Killing the monitor mid-start leaves its init and cgroups;
		// Cleanup's cgroup removal takes care of those.
		_ = p.cmd.Process.Kill()
		<-p.waited

		cerr := removeCgroups(spec.Name, spec.CgroupParent)

		return nil, errors.Join(fmt.Errorf("starting %q: %w", spec.Name, err), cerr)
	}

	if !res.OK {
		<-p.waited
		return nil, fmt.Errorf("starting %q: %s", spec.Name, res.Error)
	}

	log.Info("container started", "init_pid", res.InitPID, "monitor_pid", p.cmd.Process.Pid)

	m, aerr := Attach(spec.RunDir)
	if aerr != nil {
		return nil, diedAtOnce(spec.RunDir, p, aerr)
	}

	return m, nil
}

// diedAtOnce is the error of a start whose monitor was gone before the daemon could attach
// to it: an init that dies at once (systemd on a host out of inotify instances) takes its
// monitor with it. Once the monitor has exited, its exit record and console log say why
// (a *BootError, as WaitBoot gives for a later death); else err, the attach's.
func diedAtOnce(runDir string, p *spawned, err error) error {
	select {
	case <-p.waited:
	case <-time.After(deathWait):
		return err
	}

	e, lerr := LastExit(runDir)
	if lerr != nil {
		return err
	}

	console, _ := readTail(filepath.Join(runDir, consoleFile), consoleRingSize)

	return &BootError{Reason: BootReason(console, e), Exit: e}
}

func readStartResult(ctx context.Context, r *os.File) (startResult, error) {
	type result struct {
		res startResult
		err error
	}

	ch := make(chan result, 1)

	go func() {
		var res startResult

		line, err := bufio.NewReader(r).ReadBytes('\n')
		if err == nil || len(line) > 0 {
			err = json.Unmarshal(line, &res)
		}

		if err != nil {
			err = fmt.Errorf("monitor exited without a startup result (see its log): %w", err)
		}

		ch <- result{res, err}
	}()

	select {
	case got := <-ch:
		return got.res, got.err
	case <-ctx.Done():
		return startResult{}, ctx.Err()
	}
}

// minIDs is the smallest id range a systemd image can boot in (its system
// users and groups sit below 1000; nobody is 65534 and then missing).
const minIDs = 1000

func validateSpec(s Spec) error {
	switch {
	case s.Name == "":
		return errors.New("spec has no name")
	case s.Rootfs == "" || !filepath.IsAbs(s.Rootfs):
		return fmt.Errorf("rootfs %q is not an absolute path", s.Rootfs)
	case s.RunDir == "" || !filepath.IsAbs(s.RunDir):
		return fmt.Errorf("run dir %q is not an absolute path", s.RunDir)
	case s.IDMap.Size <= 0 || s.IDMap.HostUID <= 0 || s.IDMap.HostGID <= 0:
		return fmt.Errorf("invalid id map %+v: an unprivileged container needs a non-root host range", s.IDMap)
	case s.IDMap.Size < minIDs:
		return fmt.Errorf("id map of %d ids is too small for a systemd container", s.IDMap.Size)
	}

	return nil
}
