package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"sort"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/nsexec"
)

// DefaultPath is the PATH of exec'd commands unless the instance or the
// request sets one (LXD's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExecArgs is one command to run in a running instance.
type ExecArgs struct {
	Command []string
	Env     map[string]string // as returned by ExecEnv
	UID     uint32
	GID     uint32
	Cwd     string // "" means the user's home (from the container's /etc/passwd)

	// PTY asks for a terminal allocated inside the container (Process.PTY
	// is its master); otherwise Stdin/Stdout/Stderr are the command's stdio.
	PTY           bool
	Width, Height int
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File
}

// ExecEnv checks that an instance can run commands (it exists, is running
// and not frozen: 400 otherwise, as LXD) and returns the environment of a
// command as LXD builds it: the instance's environment.* keys, then the
// request's, then defaults for PATH, LANG and, for root, HOME and USER.
// (For other users HOME and USER come from the container's /etc/passwd.)
func (s *Service) ExecEnv(ctx context.Context, name string, req map[string]string, uid uint32) (map[string]string, error) {
	// The monitor's answer and the database's come from two processes:
	// ask both at once.
	target := make(chan error, 1)

	go func() {
		_, err := s.instances.ExecTarget(name)
		target <- err
	}()

	env, err := s.instances.Environment(ctx, name)
	terr := <-target

	if err != nil {
		return nil, err
	}

	if terr != nil {
		return nil, terr
	}

	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}

	maps.Copy(env, req)

	defaults := map[string]string{"PATH": DefaultPath, "LANG": "C.UTF-8"}
	if uid == 0 {
		defaults["HOME"] = "/root"
		defaults["USER"] = "root"
	}

	for k, v := range defaults {
		_, ok := env[k]
		if !ok {
			env[k] = v
		}
	}

	return env, nil
}

// Exec runs a command in a running instance: in all its namespaces and in
// its init's cgroups (lxd/nsexec), through the instance's exec server where
// the host allows it, else with a helper of its own. It returns once the
// command was exec'd; a command that cannot be started inside fails with
// *nsexec.ExecError.
func (s *Service) Exec(ctx context.Context, name string, a ExecArgs) (*nsexec.Process, error) {
	env := make([]string, 0, len(a.Env))
	for k, v := range a.Env {
		env = append(env, k+"="+v)
	}

	sort.Strings(env)

	o := nsexec.Options{
		Command: a.Command,
		Env:     env,
		UID:     a.UID,
		GID:     a.GID,
		Cwd:     a.Cwd,
		PTY:     a.PTY,
		Width:   clampSize(a.Width),
		Height:  clampSize(a.Height),
		Stdin:   a.Stdin,
		Stdout:  a.Stdout,
		Stderr:  a.Stderr,
	}

	if cgroup.CanPlaceInForeignGroups() {
		return s.execServed(name, o)
	}

	return s.execOneShot(name, o)
}

// execOneShot runs o with a helper of its own.
func (s *Service) execOneShot(name string, o nsexec.Options) (*nsexec.Process, error) {
	pid, filter, err := s.target(name)
	if err != nil {
		return nil, err
	}

	return s.startOneShot(pid, filter, o)
}

// startOneShot starts a helper that joins init pid's namespaces and cgroups, loads
// filter and runs o.
func (s *Service) startOneShot(pid int, filter *confine.Filter, o nsexec.Options) (*nsexec.Process, error) {
	o.Exe, o.InitPID, o.Seccomp = s.exe, pid, program(filter)
	o.Prepare = func(helper int) error { return cgroup.JoinLike(pid, helper, true) }

	return nsexec.Start(o)
}

// target is the init pid of a running, unfrozen instance and the seccomp filter that init
// got, which its commands get too.
func (s *Service) target(name string) (int, *confine.Filter, error) {
	pid, err := s.instances.ExecTarget(name)
	if err != nil {
		return 0, nil, err
	}

	filter, err := s.instances.StartedSeccomp(name)
	if err != nil {
		return 0, nil, err
	}

	return pid, filter, nil
}

// execServed runs o through the instance's exec server. A live server
// needs no look at the instance: it ends with the init it serves. One that
// went away meanwhile (idle, or its container restarted) is replaced once.
// A container with an allowlist filter never gets one (execOneShot).
func (s *Service) execServed(name string, o nsexec.Options) (*nsexec.Process, error) {
	srv, release, ok := s.execServers.live(name)
	if ok {
		p, err := srv.Start(o)
		release()

		if !errors.Is(err, nsexec.ErrServerGone) {
			return p, err
		}
	}

	for range 2 {
		// Only a container without a live server costs this look.
		pid, filter, err := s.target(name)
		if err != nil {
			return nil, err
		}

		// An allowlist cannot confine the server's fork thread, which runs
		// Go: such a container's commands each get a helper.
		if filter != nil && filter.Allowlist {
			return s.startOneShot(pid, filter, o)
		}

		srv, release, err := s.execServers.get(name, func() int { return pid }, func(pid int) (*nsexec.Server, error) {
			return s.startExecServer(pid, program(filter))
		})
		if err != nil {
			return nil, err
		}

		p, err := srv.Start(o)
		release()

		if !errors.Is(err, nsexec.ErrServerGone) {
			return p, err
		}
	}

	return nil, fmt.Errorf("running command: %w", nsexec.ErrServerGone)
}

// startExecServer starts the exec server of the instance whose init is pid:
// in init's cgroup v1 groups, making commands in init's cgroup2 group.
func (s *Service) startExecServer(pid int, seccomp []byte) (*nsexec.Server, error) {
	dir, err := cgroup.Cgroup2Dir(pid)
	if err != nil {
		return nil, err
	}

	o := nsexec.ServerOptions{
		Exe:         s.exe,
		InitPID:     pid,
		Prepare:     func(server int) error { return cgroup.JoinLike(pid, server, false) },
		IdleTimeout: serverIdle,
		Seccomp:     seccomp,
	}

	if dir != "" {
		f, err := os.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("opening cgroup of init: %w", err)
		}

		defer func() { _ = f.Close() }()

		o.Cgroup = f
	}

	return nsexec.StartServer(o)
}

// program is the filter's program, nil without a filter.
func program(f *confine.Filter) []byte {
	if f == nil {
		return nil
	}

	return f.Program
}

func clampSize(n int) uint16 {
	if n <= 0 || n > 0xffff {
		return 0
	}

	return uint16(n)
}
