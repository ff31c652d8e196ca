package session

import (
	"sync"
	"time"
)

// server is what the registry needs of a helper serving one container (*nsexec.Server,
// *nsexec.FileServer): it ends on its own when the container's init exits (it holds a
// pidfd of it), so a stopped or deleted container leaves no server behind.
type server interface {
	InitPID() int          // the init whose container it serves
	Done() <-chan struct{} // closed once it is gone
	Close()
}

// servers holds the running instances' servers of one kind, one per instance: started by
// its first use, reused while it serves the instance's current init, dropped once it is
// gone. Safe for concurrent use.
type servers[S server] struct {
	// idle closes a server nobody has used for that long; 0 leaves that to the server
	// (the exec server times itself out, counting the commands it runs).
	idle time.Duration

	mu       sync.Mutex
	byName   map[string]*entry[S]
	starting map[string]chan struct{} // closed when that instance's start ends
}

type entry[S server] struct {
	srv   S
	users int         // uses under way
	timer *time.Timer // the idle close, armed while users is 0
}

// live returns the instance's server if it still serves, whatever init that is, and a
// release to call once the use is over.
func (r *servers[S]) live(name string) (S, func(), bool) {
	r.mu.Lock()
	defer r.mu.Unlock()

	e := r.byName[name]
	if e == nil || isDone(e.srv.Done()) {
		var none S
		return none, nil, false
	}

	return e.srv, r.use(name, e), true
}

// get returns the live server of instance name that serves the init pid returns, starting
// one with start if there is none, and a release to call once the use is over. Starts for
// one instance are serialised (a second caller waits for the first and then looks again),
// and never hold up other instances.
func (r *servers[S]) get(name string, pid func() int, start func(pid int) (S, error)) (S, func(), error) {
	for {
		want := pid()

		r.mu.Lock()

		e := r.byName[name]
		if e != nil && e.srv.InitPID() == want && !isDone(e.srv.Done()) {
			release := r.use(name, e)
			r.mu.Unlock()

			return e.srv, release, nil
		}

		wait := r.starting[name]
		if wait != nil {
			r.mu.Unlock()
			<-wait

			continue
		}

		done := make(chan struct{})
		if r.starting == nil {
			r.starting = map[string]chan struct{}{}
			r.byName = map[string]*entry[S]{}
		}

		r.starting[name] = done

		if e != nil {
			// An old init's, or gone: nobody gets it from now on.
			delete(r.byName, name)
			e.stopTimer()
		}

		r.mu.Unlock()

		if e != nil {
			e.srv.Close()
		}

		srv, err := start(want)

		r.mu.Lock()
		delete(r.starting, name)
		close(done)

		var release func()
		if err == nil {
			e = &entry[S]{srv: srv}
			r.byName[name] = e
			release = r.use(name, e)
		}

		r.mu.Unlock()

		if err != nil {
			var none S
			return none, nil, err
		}

		go r.forget(name, e)

		return srv, release, nil
	}
}

// use counts one use of e and returns its release. Called with mu.
func (r *servers[S]) use(name string, e *entry[S]) func() {
	e.users++
	e.stopTimer()

	var once sync.Once

	return func() { once.Do(func() { r.release(name, e) }) }
}

// release ends one use; the last one arms the idle close.
func (r *servers[S]) release(name string, e *entry[S]) {
	r.mu.Lock()
	defer r.mu.Unlock()

	e.users--
	if e.users > 0 || r.idle <= 0 || r.byName[name] != e {
		return
	}

	e.timer = time.AfterFunc(r.idle, func() {
		r.mu.Lock()
		idle := e.users == 0 && r.byName[name] == e
		if idle {
			delete(r.byName, name)
		}
		r.mu.Unlock()

		if idle {
			e.srv.Close()
		}
	})
}

// forget drops a server from the table once it is gone (closed, idle, or its init
// exited).
func (r *servers[S]) forget(name string, e *entry[S]) {
	<-e.srv.Done()

	r.mu.Lock()
	defer r.mu.Unlock()

	e.stopTimer()

	if r.byName[name] == e {
		delete(r.byName, name)
	}
}

// stopTimer disarms the idle close. Called with mu.
func (e *entry[S]) stopTimer() {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
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
