package instance

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/shared/api"
)

// fileServerIdle is how long a container's file server outlives its last operation: a
// `file push -r` or a script pushing in a loop reuses it, an idle container carries none.
const fileServerIdle = execServerIdle

// fileServers are the running containers' file servers (lxd/nsexec), one per instance,
// started by its first file operation.
type fileServers struct {
	mu       sync.Mutex
	byName   map[string]*fileServer
	starting map[string]chan struct{} // closed when that instance's start ends
}

type fileServer struct {
	*nsexec.FileServer
	users int         // operations under way; under fileServers.mu
	idle  *time.Timer // armed while users is 0
}

// fileServer returns the live file server of the instance mon runs, starting one if
// there is none, and a release to call once the operation is done.
func (m *Manager) fileServer(name string, mon *container.Monitor) (*nsexec.FileServer, func(), error) {
	e := &m.fileServers
	for {
		pid := mon.InitPID()

		e.mu.Lock()
		s := e.byName[name]
		if s != nil && s.InitPID() == pid && !isDone(s.Done()) {
			s.users++
			if s.idle != nil {
				s.idle.Stop()
				s.idle = nil
			}

			e.mu.Unlock()
			return s.FileServer, func() { e.release(name, s) }, nil
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
			e.byName = map[string]*fileServer{}
		}

		e.starting[name] = done
		e.mu.Unlock()

		if s != nil {
			s.Close() // an old init's, or gone
		}

		srv, err := nsexec.StartFileServer(m.cfg.Exe, pid)

		// The pid was read before the server took a pidfd of it: make sure it was still
		// this container's init, not a process that got its number since.
		if err == nil && (m.monitor(name) != mon || mon.InitPID() != pid) {
			srv.Close()
			err = api.StatusErrorf(http.StatusConflict, "instance %q changed state, try again", name)
		}

		e.mu.Lock()
		delete(e.starting, name)
		close(done)
		if err == nil {
			s = &fileServer{FileServer: srv, users: 1}
			e.byName[name] = s
		}
		e.mu.Unlock()

		if err != nil {
			if api.StatusErrorCheck(err) {
				return nil, nil, err
			}

			return nil, nil, fmt.Errorf("starting the file server of %q: %w", name, err)
		}

		go e.forget(name, s)
		return srv, func() { e.release(name, s) }, nil
	}
}

// release ends one operation; the last one arms the idle timer.
func (e *fileServers) release(name string, s *fileServer) {
	e.mu.Lock()
	defer e.mu.Unlock()

	s.users--
	if s.users > 0 {
		return
	}

	s.idle = time.AfterFunc(fileServerIdle, func() {
		e.mu.Lock()
		idle := s.users == 0 && e.byName[name] == s
		if idle {
			delete(e.byName, name)
		}
		e.mu.Unlock()

		if idle {
			s.Close()
		}
	})
}

// forget drops a server from the table once it is gone (its init exited).
func (e *fileServers) forget(name string, s *fileServer) {
	<-s.Done()

	e.mu.Lock()
	defer e.mu.Unlock()

	if e.byName[name] == s {
		delete(e.byName, name)
	}
}
