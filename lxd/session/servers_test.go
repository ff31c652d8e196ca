package session

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer stands for an exec or file server: Close ends it, as closing a real one's
// socket does, and exit is its init exiting.
type fakeServer struct {
	pid    int
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
}

func newFake(pid int) *fakeServer { return &fakeServer{pid: pid, done: make(chan struct{})} }

func (f *fakeServer) InitPID() int          { return f.pid }
func (f *fakeServer) Done() <-chan struct{} { return f.done }
func (f *fakeServer) Close()                { f.closed.Store(true); f.exit() }
func (f *fakeServer) exit()                 { f.once.Do(func() { close(f.done) }) }

// starter counts the servers it starts.
type starter struct {
	n       atomic.Int32
	started chan *fakeServer
}

func newStarter() *starter { return &starter{started: make(chan *fakeServer, 16)} }

func (s *starter) start(pid int) (*fakeServer, error) {
	s.n.Add(1)
	f := newFake(pid)
	s.started <- f
	return f, nil
}

func pidOf(n int) func() int { return func() int { return n } }

func (r *servers[S]) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byName)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()

	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}

	t.Fatalf("timed out waiting for %s", what)
}

func TestServersStartOnceAndReuse(t *testing.T) {
	var r servers[*fakeServer]

	st := newStarter()

	_, _, ok := r.live("c1")
	if ok {
		t.Fatal("live server before any use")
	}

	a, relA, err := r.get("c1", pidOf(10), st.start)
	if err != nil {
		t.Fatal(err)
	}

	b, relB, err := r.get("c1", pidOf(10), st.start)
	if err != nil {
		t.Fatal(err)
	}

	l, relL, ok := r.live("c1")
	if !ok || a != b || a != l || st.n.Load() != 1 {
		t.Fatalf("second use did not reuse the server: %p %p %p ok=%v, %d starts", a, b, l, ok, st.n.Load())
	}

	relA()
	relB()
	relL()
	relL() // a release is idempotent

	if a.closed.Load() {
		t.Fatal("a server without idle timeout was closed by the registry")
	}
}

// TestServersStartSerialised: concurrent first uses of one instance start one server; a
// slow start does not hold up another instance.
func TestServersStartSerialised(t *testing.T) {
	var r servers[*fakeServer]

	var starts atomic.Int32

	gate := make(chan struct{})
	slow := func(pid int) (*fakeServer, error) {
		starts.Add(1)
		<-gate

		return newFake(pid), nil
	}

	var wg sync.WaitGroup

	got := make([]*fakeServer, 8)
	for i := range got {
		wg.Add(1)

		go func() {
			defer wg.Done()

			s, rel, err := r.get("slow", pidOf(1), slow)
			if err != nil {
				t.Error(err)
				return
			}

			rel()
			got[i] = s
		}()
	}

	waitFor(t, "the first start", func() bool { return starts.Load() == 1 })

	other, rel, err := r.get("other", pidOf(2), newStarter().start)
	if err != nil || other == nil {
		t.Fatalf("another instance was held up: %v", err)
	}

	rel()
	close(gate)
	wg.Wait()

	if starts.Load() != 1 {
		t.Fatalf("%d starts for one instance, want 1", starts.Load())
	}

	for _, s := range got {
		if s != got[0] {
			t.Fatal("concurrent uses got different servers")
		}
	}
}

// TestServersReplaceOldInit: a server of an init that is no longer the instance's (it
// rebooted, or stopped and started) is closed and replaced.
func TestServersReplaceOldInit(t *testing.T) {
	var r servers[*fakeServer]

	st := newStarter()

	old, rel, err := r.get("c1", pidOf(10), st.start)
	if err != nil {
		t.Fatal(err)
	}

	rel()

	s, rel, err := r.get("c1", pidOf(11), st.start)
	if err != nil {
		t.Fatal(err)
	}

	defer rel()

	if s == old || s.InitPID() != 11 || !old.closed.Load() {
		t.Fatalf("old init's server kept: new %p (pid %d), old closed %v", s, s.InitPID(), old.closed.Load())
	}
}

// TestServersForgetGone: a server whose container stopped (its init exited) leaves the
// table, is not handed out again, and the next use starts a fresh one.
func TestServersForgetGone(t *testing.T) {
	var r servers[*fakeServer]

	st := newStarter()

	s, rel, err := r.get("c1", pidOf(10), st.start)
	if err != nil {
		t.Fatal(err)
	}

	rel()
	s.exit()

	_, _, ok := r.live("c1")
	if ok {
		t.Fatal("a gone server is still live")
	}

	waitFor(t, "the gone server to leave the table", func() bool { return r.count() == 0 })

	s2, rel, err := r.get("c1", pidOf(10), st.start)
	if err != nil {
		t.Fatal(err)
	}

	rel()

	if s2 == s || st.n.Load() != 2 {
		t.Fatal("a gone server was handed out again")
	}
}

// TestServersIdle: with an idle timeout the registry closes a server once nobody used it
// for that long, never while it is busy.
func TestServersIdle(t *testing.T) {
	r := servers[*fakeServer]{idle: 50 * time.Millisecond}

	st := newStarter()

	s, rel, err := r.get("c1", pidOf(10), st.start)
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(200 * time.Millisecond)

	if s.closed.Load() {
		t.Fatal("a busy server was closed")
	}

	rel()

	// A use before the timeout disarms it.
	_, rel, ok := r.live("c1")
	if !ok {
		t.Fatal("server gone right after its release")
	}

	time.Sleep(200 * time.Millisecond)

	if s.closed.Load() {
		t.Fatal("a server in use again was closed")
	}

	rel()
	waitFor(t, "the idle close", func() bool { return s.closed.Load() && r.count() == 0 })
}

// TestServersStartError: a failed start stores nothing and is tried again by the next use.
func TestServersStartError(t *testing.T) {
	var r servers[*fakeServer]

	boom := errors.New("boom")

	_, _, err := r.get("c1", pidOf(10), func(int) (*fakeServer, error) { return nil, boom })
	if !errors.Is(err, boom) || r.count() != 0 {
		t.Fatalf("err %v, %d servers", err, r.count())
	}

	st := newStarter()

	_, rel, err := r.get("c1", pidOf(10), st.start)
	if err != nil || st.n.Load() != 1 {
		t.Fatalf("no second start: %v", err)
	}

	rel()
}
