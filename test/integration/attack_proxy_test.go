package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procStatus reads the fields of /proc/<pid>/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}

	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}

	return out
}

// socketFDs counts a process's open sockets.
func socketFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}

	n := 0
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if strings.HasPrefix(l, "socket:") {
			n++
		}
	}

	return n
}

// TestAttackProxy checks what a proxy device's forwarder holds: no privilege at all, and
// no more UDP flows than its limit however many clients send to it.
func TestAttackProxy(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	name := uniqueName("prx")
	d.berth("launch", "debian/12", name)
	d.waitRunning(name)

	// A UDP echo server inside.
	_, err := d.insideCg(name, `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1:7778",Proto=>"udp") or die; while($s->recv($m,100)){$s->send($m)}' </dev/null >/dev/null 2>&1 &`)
	if err != nil {
		t.Fatal(err)
	}

	port := cfgFreePort(t, "udp")
	d.berth("config", "device", "add", name, "dns", "proxy", fmt.Sprintf("listen=udp:127.0.0.1:%d", port), "connect=udp:127.0.0.1:7778")
	pid := readPID(t, filepath.Join(d.dir, "instances", name, "devices", "dns.pid"))
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	ask := func(c net.Conn, msg string) bool {
		buf := make([]byte, 100)
		for range 50 {
			_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = c.Write([]byte(msg))
			n, err := c.Read(buf)
			if err == nil && string(buf[:n]) == msg {
				return true
			}
		}

		return false
	}

	first, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}

	defer first.Close()
	if !ask(first, "hello") {
		t.Fatal("the proxy does not forward")
	}

	t.Run("no-privilege", func(t *testing.T) {
		st := procStatus(t, pid)
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
			if st[k] != "0000000000000000" {
				t.Errorf("proxy %s = %s, want none", k, st[k])
			}
		}

		if st["NoNewPrivs"] != "1" {
			t.Errorf("proxy NoNewPrivs = %q", st["NoNewPrivs"])
		}

		uid := strconv.Itoa(diskRootUID(t, d, name))
		if st["Uid"] != strings.Repeat(uid+"\t", 3)+uid || st["Gid"] == "" || strings.HasPrefix(st["Gid"], "0") || st["Groups"] != "" {
			t.Errorf("proxy runs as uid %q gid %q groups %q, want the container root's host uid %s and no groups", st["Uid"], st["Gid"], st["Groups"], uid)
		}

		// It lives in the container's network namespace, not the host's.
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", d.initPID(name)))
		if ns == "" || ns != want {
			t.Errorf("proxy network namespace %q, want the container's %q", ns, want)
		}

		// Positive control: the same reading of the daemon shows its capabilities.
		if ds := procStatus(t, d.cmd.Process.Pid); ds["CapEff"] == "0000000000000000" {
			t.Errorf("control: the daemon shows no capabilities either: %v", ds["CapEff"])
		}
	})

	t.Run("udp-flows-capped", func(t *testing.T) {
		const limit, clients = 1024, 1300
		before := socketFDs(t, pid)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()

		peak := 0
		for i := range clients {
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}

			// Each client waits for its answer: a flow per client for sure, none lost
			// to a full socket buffer.
			conns = append(conns, c)
			if !ask(c, "flood") {
				t.Fatalf("control: client %d of the flood is not served", i)
			}

			if i%100 == 99 {
				peak = max(peak, socketFDs(t, pid))
			}
		}

		// Let the proxy catch up with the queue of datagrams: until its socket count
		// stays put for a second.
		last, still := -1, 0
		for deadline := time.Now().Add(30 * time.Second); still < 5 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			n := socketFDs(t, pid)
			peak = max(peak, n)
			if n == last {
				still++
			} else {
				last, still = n, 0
			}
		}

		// Positive control: the flood did create flows, up to the limit.
		if peak < limit {
			t.Errorf("control: only %d sockets in the proxy after %d clients (limit %d)", peak, clients, limit)
		}

		// Its listening socket, the first client's flow and the flood's, capped.
		if peak > limit+before {
			t.Errorf("the proxy held %d sockets for %d clients; the flow limit is %d", peak, clients, limit)
		}

		// A new client is still served (the least recently used flow made room).
		fresh, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}

		defer fresh.Close()
		if !ask(fresh, "after the flood") {
			t.Error("a new client is not served after the flood")
		}
	})
}
