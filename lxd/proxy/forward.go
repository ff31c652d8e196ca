package proxy

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dialIn connects to addr from inside the network namespace netns. A socket belongs to
// the namespace of the thread that creates it, so the dial runs on a fresh locked thread
// that joins the namespace (allowed for network namespaces, unlike user and mount ones)
// and is discarded afterwards: the goroutine ends locked.
func dialIn(netns *os.File, addr Addr) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}

	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()

		err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET)
		if err != nil {
			ch <- result{nil, fmt.Errorf("joining the container's network namespace: %w", err)}
			return
		}

		c, err := net.DialTimeout(addr.Net, addr.String(), 10*time.Second)
		ch <- result{c, err}
	}()

	r := <-ch
	return r.c, r.err
}

func serveTCP(l net.Listener, dial func() (net.Conn, error)) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}

		go func() {
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

// udpIdle ends a UDP flow nobody has used for this long.
const udpIdle = 2 * time.Minute

// serveUDP keeps one connected socket inside the container per client address, so that
// replies find their way back.
func serveUDP(pc net.PacketConn, dial func() (net.Conn, error)) error {
	var mu sync.Mutex
	flows := map[string]net.Conn{}

	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}

		key := from.String()
		mu.Lock()
		up := flows[key]
		mu.Unlock()

		if up == nil {
			up, err = dial()
			if err != nil {
				fmt.Fprintln(os.Stderr, "berth proxy: connecting:", err)
				continue
			}

			mu.Lock()
			flows[key] = up
			mu.Unlock()

			go func(up net.Conn, from net.Addr) {
				defer func() {
					mu.Lock()
					delete(flows, from.String())
					mu.Unlock()
					_ = up.Close()
				}()

				reply := make([]byte, 64<<10)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := up.Read(reply)
					if err != nil {
						return // idle (deadline) or closed
					}

					_, _ = pc.WriteTo(reply[:n], from)
				}
			}(up, from)
		}

		_, _ = up.Write(buf[:n])
	}
}
