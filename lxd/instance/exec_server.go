package instance

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/nsexec"
)

// execServerIdle is how long a container's exec server outlives its last
// command: long enough for scripts that exec in a loop, short enough that
// an idle container carries no helper.
const execServerIdle = 5 * time.Minute

// execServers are the running containers' exec servers (lxd/nsexec), one
// per instance, started by its first exec.
type execServers struct {
	mu       sync.Mutex
	byName   map[string]*nsexec.Server
	starting map[string]chan struct{} // closed when that instance's start ends
}

// live returns the instance's server if it still serves, else nil.
func (e *execServers) live(name string) *nsexec.Server {
	e.mu.Lock()
	defer e.mu.Unlock()

	s := e.byName[name]
	if s == nil || isDone(s.Done()) {
		return nil
	}

	return s
}

// get returns the live server of instance name whose init is pid, starting
// one with start if there is none. Starts for one instance are serialised,
// and never hold up execs into other instances.
func (e *execServers) get(name string, pid int, start func() (*nsexec.Server, error)) (*nsexec.Server, error) {
	for {
		e.mu.Lock()

		s := e.byName[name]
		if s != nil && s.InitPID() == pid && !isDone(s.Done()) {
			e.mu.Unlock()
			return s, nil
		}

		wait := e.starting[name]
		if wait != nil {
			e.mu.Unlock()
			<-wait

			continue
		}

		done := make(chan struct{})
		if e.starting == nil {
			e.starting = map[string]chan struct{}{}
		}

		if e.byName == nil {
			e.byName = map[string]*nsexec.Server{}
		}

		e.starting[name] = done
		e.mu.Unlock()

		if s != nil {
			s.Close() // an old container's, or gone
		}

		s, err := start()

		e.mu.Lock()
		delete(e.starting, name)
		close(done)

		if err == nil {
			e.byName[name] = s
		}
		e.mu.Unlock()

		if err != nil {
			return nil, err
		}

		go e.forget(name, s)

		return s, nil
	}
}

// forget drops a server from the table once it is gone.
func (e *execServers) forget(name string, s *nsexec.Server) {
	<-s.Done()

	e.mu.Lock()
	defer e.mu.Unlock()

	if e.byName[name] == s {
		delete(e.byName, name)
	}
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// startExecServer starts the exec server of the instance whose init is pid:
// in init's cgroup v1 groups, making commands in init's cgroup2 group.
func (m *Manager) startExecServer(pid int, seccomp []byte) (*nsexec.Server, error) {
	dir, err := cgroup.Cgroup2Dir(pid)
	if err != nil {
		return nil, err
	}

	o := nsexec.ServerOptions{
		Exe:         m.cfg.Exe,
		InitPID:     pid,
		Prepare:     func(server int) error { return cgroup.JoinLike(pid, server, false) },
		IdleTimeout: execServerIdle,
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

// execServed runs o through the instance's exec server. A live server
// needs no look at the instance: it ends with the init it serves. One that
// went away meanwhile (idle, or its container restarted) is replaced once.
// A container with an allowlist filter never gets one (execOneShot).
func (m *Manager) execServed(name string, o nsexec.Options) (*nsexec.Process, error) {
	s := m.execServers.live(name)
	if s != nil {
		p, err := s.Start(o)
		if !errors.Is(err, nsexec.ErrServerGone) {
			return p, err
		}
	}

	for range 2 {
		pid, err := m.execTarget(name)
		if err != nil {
			return nil, err
		}

		// Only a container without a live server costs this read.
		filter, err := m.startedSeccomp(name)
		if err != nil {
			return nil, err
		}

		// An allowlist cannot confine the server's fork thread, which runs
		// Go: such a container's commands each get a helper.
		if filter != nil && filter.Allowlist {
			return m.execOneShot(name, o)
		}

		s, err := m.execServers.get(name, pid, func() (*nsexec.Server, error) { return m.startExecServer(pid, program(filter)) })
		if err != nil {
			return nil, err
		}

		p, err := s.Start(o)
		if !errors.Is(err, nsexec.ErrServerGone) {
			return p, err
		}
	}

	return nil, fmt.Errorf("running command: %w", nsexec.ErrServerGone)
}
