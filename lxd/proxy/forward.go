package proxy

import (
	"container/list"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what one proxy holds, whoever sends to it.
type Limits struct {
	TCPConns int           // concurrent TCP connections; more are accepted and closed at once
	UDPFlows int           // UDP flows (one socket in the container each); the least recently used goes first
	UDPIdle  time.Duration // a UDP flow unused for this long ends
}

// DefaultLimits are the limits of every proxy device.
var DefaultLimits = Limits{TCPConns: 1024, UDPFlows: 1024, UDPIdle: 2 * time.Minute}

// dialTimeout bounds a connection attempt to the container.
const dialTimeout = 10 * time.Second

// logEvery rate-limits the messages about refused connections and evicted flows.
const logEvery = time.Minute

type rateLog struct{ last atomic.Int64 }

func (r *rateLog) printf(format string, args ...any) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(logEvery) || !r.last.CompareAndSwap(last, now) {
		return
	}

	fmt.Fprintf(os.Stderr, "berth proxy: "+format+"\n", args...)
}

func serveTCP(l net.Listener, dial func() (net.Conn, error), lim Limits) error {
	slots := make(chan struct{}, lim.TCPConns)
	var full rateLog
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}

		select {
		case slots <- struct{}{}:
		default:
			// At the limit: close at once rather than leave clients queued in the backlog.
			full.printf("%d connections open; refusing more", lim.TCPConns)
			_ = c.Close()
			continue
		}

		go func() {
			defer func() { <-slots }()
			defer func() { _ = c.Close() }()

			up, err := dial()
			if err != nil {
				fmt.Fprintln(os.Stderr, "berth proxy: connecting:", err)
				return
			}

			defer func() { _ = up.Close() }()
			pipe(c, up)
		}()
	}
}

// pipe copies both ways, passing on half-closes, until both directions end.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}

	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// udpFlow is one client's connected socket inside the container.
type udpFlow struct {
	key  string
	from net.Addr
	up   net.Conn
	elem *list.Element
}

// udpTable holds the flows, most recently used first.
type udpTable struct {
	mu    sync.Mutex
	flows map[string]*udpFlow
	lru   *list.List
}

// touch marks f used; false if it was evicted meanwhile.
func (t *udpTable) touch(f *udpFlow) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flows[f.key] != f {
		return false
	}

	t.lru.MoveToFront(f.elem)
	return true
}

func (t *udpTable) remove(f *udpFlow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flows[f.key] == f {
		delete(t.flows, f.key)
		t.lru.Remove(f.elem)
	}
}

// serveUDP keeps one connected socket inside the container per client address, so that
// replies find their way back. At most lim.UDPFlows exist: a new client evicts the least
// recently used flow.
func serveUDP(pc net.PacketConn, dial func() (net.Conn, error), lim Limits) error {
	t := &udpTable{flows: map[string]*udpFlow{}, lru: list.New()}
	var evicting rateLog

	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}

		key := from.String()
		t.mu.Lock()
		f := t.flows[key]
		if f != nil {
			t.lru.MoveToFront(f.elem)
		}
		t.mu.Unlock()

		if f == nil {
			// Make room first, so that no more than the limit of sockets ever exist.
			var old *udpFlow
			t.mu.Lock()
			if len(t.flows) >= lim.UDPFlows {
				old = t.lru.Remove(t.lru.Back()).(*udpFlow)
				delete(t.flows, old.key)
			}
			t.mu.Unlock()

			if old != nil {
				evicting.printf("%d UDP flows open; evicting the least recently used", lim.UDPFlows)
				_ = old.up.Close() // its reader ends
			}

			up, err := dial()
			if err != nil {
				fmt.Fprintln(os.Stderr, "berth proxy: connecting:", err)
				continue
			}

			f = &udpFlow{key: key, from: from, up: up}
			t.mu.Lock()
			f.elem = t.lru.PushFront(f)
			t.flows[key] = f
			t.mu.Unlock()

			go replies(pc, t, f, lim.UDPIdle)
		}

		_ = f.up.SetReadDeadline(time.Now().Add(lim.UDPIdle))
		_, _ = f.up.Write(buf[:n])
	}
}

// replies sends what the container answers on a flow back to its client, until the flow
// is idle for idle (the read deadline, pushed forward by each datagram either way), is
// evicted (its socket closed) or fails.
func replies(pc net.PacketConn, t *udpTable, f *udpFlow, idle time.Duration) {
	defer func() {
		t.remove(f)
		_ = f.up.Close()
	}()

	reply := make([]byte, 64<<10)
	for {
		n, err := f.up.Read(reply)
		if err != nil {
			return
		}

		if !t.touch(f) {
			return
		}

		_ = f.up.SetReadDeadline(time.Now().Add(idle))
		_, _ = pc.WriteTo(reply[:n], f.from)
	}
}
