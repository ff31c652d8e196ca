package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds connecting to a monitor; a live one accepts at once.
const dialTimeout = 2 * time.Second

// watchBuffer is the read buffer of a watch connection; longer lines are read anyway.
const watchBuffer = 512

// Monitor is the daemon's handle on a running container's monitor. It
// holds one watch connection, which is how Done learns of the stop.
type Monitor struct {
	runDir  string
	initPID int        // init's pid at Attach
	init    initRecord // init's pid now
	watch   net.Conn
	done    chan struct{}

	mu        sync.Mutex
	exit      *Exit
	closed    bool
	afterDone []func() // run once done is closed (AfterDone)

	// frozen caches whether the container is frozen. Only this handle freezes and thaws
	// it (one handle per container in the daemon), so listing instances needs no round
	// trip to every monitor: at hundreds of containers that was most of a list's time.
	frozen atomic.Int32 // frozenUnknown, frozenNo or frozenYes

	// stopping is set once a stop was asked (by this handle, or before Attach as its
	// monitor said): execs are refused from then on without asking.
	stopping atomic.Bool
}

const (
	frozenUnknown int32 = iota
	frozenNo
	frozenYes
)

// Attach connects to the monitor serving runDir, e.g. after a daemon
// restart. It returns ErrNotRunning if there is none or it has stopped.
func Attach(runDir string) (*Monitor, error) {
	calls.Add(1)

	c, err := net.DialTimeout("unix", filepath.Join(runDir, socketFile), dialTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}

	_ = c.SetDeadline(time.Now().Add(dialTimeout))

	err = json.NewEncoder(c).Encode(request{Op: opWatch})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}

	// The watch connection carries two short JSON lines (the state, then the exit): a
	// small buffer, since the daemon keeps one per running container.
	br := bufio.NewReaderSize(c, watchBuffer)

	var ack response

	err = readResponse(br, &ack)
	if err == nil && (!ack.OK || ack.State == nil) {
		err = errors.New(ack.Error)
	}

	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}

	_ = c.SetDeadline(time.Time{})

	m := &Monitor{runDir: runDir, initPID: ack.State.InitPID, watch: c, done: make(chan struct{})}
	m.init.learn(ack.State.InitPID)
	m.setFrozen(ack.State.Status == "frozen", nil)
	m.stopping.Store(ack.State.Status == "stopping")

	go m.watchExit(br)

	return m, nil
}

func readResponse(br *bufio.Reader, resp *response) error {
	line, err := br.ReadBytes('\n')
	if err != nil {
		return err
	}

	return json.Unmarshal(line, resp)
}

// watchExit waits for the monitor's exit message (or its disappearance), then runs what
// AfterDone arranged, in this goroutine: one per running container, not one more per
// thing that waits for its end.
func (m *Monitor) watchExit(br *bufio.Reader) {
	var resp response

	err := readResponse(br, &resp)

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}

	switch {
	case err == nil && resp.Exit != nil:
		m.exit = resp.Exit
	default:
		// The monitor died without telling us; the record may still say
		// how init ended.
		m.exit, _ = LastExit(m.runDir)
	}

	close(m.done)
	after := m.afterDone
	m.afterDone = nil
	m.mu.Unlock()

	for _, fn := range after {
		fn()
	}
}

// AfterDone has fn run once Done is closed, in the goroutine that watches the monitor
// (at once, in a goroutine of its own, if Done is closed already). After Close, fn is
// never run.
func (m *Monitor) AfterDone(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()

	select {
	case <-m.done:
		go fn()
	default:
		if !m.closed {
			m.afterDone = append(m.afterDone, fn)
		}
	}
}

// InitPID is init's pid on the host. A reboot inside replaces init: the pid learned
// from the monitor holds while a pidfd of that process says it lives, and the monitor
// is asked again once it has exited. If the monitor cannot answer it returns the last
// pid known.
func (m *Monitor) InitPID() int {
	m.init.mu.Lock()
	defer m.init.mu.Unlock()

	if m.init.alive() {
		return m.init.pid
	}

	s, err := m.State()
	if err != nil {
		return m.init.pid
	}

	m.init.learnLocked(s.InitPID)
	return s.InitPID
}

// Done is closed when the container has stopped for any reason (Stop,
// poweroff inside, init crashing, the monitor dying) and the monitor has
// cleaned up. After Close it is never closed.
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Exit is how the container ended, once Done is closed (nil before, or if
// the monitor died without a record).
func (m *Monitor) Exit() *Exit {
	m.mu.Lock()
	defer m.mu.Unlock()

	return m.exit
}

// Close drops the daemon's connection; the container keeps running.
func (m *Monitor) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()

	m.init.close()
	return m.watch.Close()
}

// Stop asks init to power off (SIGRTMIN+3), and has the monitor SIGKILL it
// after timeout; force kills at once. It returns once init is reaped and
// the monitor has cleaned up (cgroups removed, Spec.Unmounts done). If ctx
// ends first the stop still proceeds in the monitor.
func (m *Monitor) Stop(ctx context.Context, timeout time.Duration, force bool) (*Exit, error) {
	m.stopping.Store(true)
	resp, err := m.call(ctx, request{Op: opStop, TimeoutNs: int64(timeout), Force: force})
	if err != nil {
		// Stopped already, or stopping under our feet.
		select {
		case <-m.done:
			e := m.Exit()
			if e != nil {
				return e, nil
			}
		default:
			// Refused, or the monitor did not answer: unless ctx ended (then the stop
			// goes on in the monitor), the container runs on.
			if ctx.Err() == nil {
				m.stopping.Store(false)
			}
		}

		return nil, err
	}

	// The watch connection carries the same news; wait for it so Done is
	// closed when Stop returns.
	select {
	case <-m.done:
	case <-time.After(time.Second):
	}

	return resp.Exit, nil
}

// Stopping says whether a stop of the container was asked.
func (m *Monitor) Stopping() bool { return m.stopping.Load() }

// Freeze freezes every process of the container.
func (m *Monitor) Freeze() error {
	_, err := m.call(context.Background(), request{Op: opFreeze})
	m.setFrozen(true, err)
	return err
}

// Thaw resumes a frozen container.
func (m *Monitor) Thaw() error {
	_, err := m.call(context.Background(), request{Op: opThaw})
	m.setFrozen(false, err)
	return err
}

// Frozen reports whether the container is frozen (false if it cannot tell).
func (m *Monitor) Frozen() bool {
	switch m.frozen.Load() {
	case frozenYes:
		return true
	case frozenNo:
		return false
	}

	s, err := m.State()
	if err != nil {
		return false
	}

	m.setFrozen(s.Status == "frozen", nil)
	return s.Status == "frozen"
}

// setFrozen records the outcome of a freeze or thaw; after a failed one the state is
// asked again next time.
func (m *Monitor) setFrozen(frozen bool, err error) {
	switch {
	case err != nil:
		m.frozen.Store(frozenUnknown)
	case frozen:
		m.frozen.Store(frozenYes)
	default:
		m.frozen.Store(frozenNo)
	}
}

// State asks the monitor for the container's state.
func (m *Monitor) State() (*State, error) {
	resp, err := m.call(context.Background(), request{Op: opState})
	if err != nil {
		return nil, err
	}

	return resp.State, nil
}

// Stats reads the container's resource use.
func (m *Monitor) Stats() (Stats, error) {
	resp, err := m.call(context.Background(), request{Op: opStats})
	if err != nil {
		return Stats{}, err
	}

	return *resp.Stats, nil
}

// SetMounts gives the monitor the extra mounts of the container's next
// in-place reboot (devices changed while it runs must survive one) and the
// host mounts to remove once it stops for good.
func (m *Monitor) SetMounts(mounts []Mount, unmounts []string) error {
	_, err := m.call(context.Background(), request{Op: opSetMounts, Mounts: mounts, Unmounts: unmounts})
	return err
}

// ConsoleLog returns the console output kept by the monitor (the last
// 256 KiB). After a stop, RunDir/console.log holds it.
func (m *Monitor) ConsoleLog() ([]byte, error) {
	resp, err := m.call(context.Background(), request{Op: opConsoleLog})
	if err != nil {
		return nil, err
	}

	return resp.Console, nil
}

// calls counts the requests this process made to monitors (Attach's watch included).
var calls atomic.Int64

// Calls returns how many requests this process has made to monitors: the debug endpoint
// reports it, so tests can tell that a read of many instances asks none of them.
func Calls() int64 { return calls.Load() }

// call makes one request on a fresh connection.
func (m *Monitor) call(ctx context.Context, req request) (*response, error) {
	calls.Add(1)

	var d net.Dialer

	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()

	c, err := d.DialContext(dctx, "unix", filepath.Join(m.runDir, socketFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}

	defer func() { _ = c.Close() }()

	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()

	err = json.NewEncoder(c).Encode(req)
	if err != nil {
		return nil, fmt.Errorf("sending %s to monitor: %w", req.Op, err)
	}

	var resp response

	err = readResponse(bufio.NewReader(c), &resp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}

		return nil, fmt.Errorf("reading %s reply from monitor: %w", req.Op, err)
	}

	if !resp.OK {
		if resp.Exit != nil {
			return &resp, fmt.Errorf("%s: %w", req.Op, ErrNotRunning)
		}

		return &resp, fmt.Errorf("monitor: %s: %s", req.Op, resp.Error)
	}

	return &resp, nil
}
