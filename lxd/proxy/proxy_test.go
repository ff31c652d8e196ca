package proxy

import (
	"bufio"
	"net"
	"os"
	"testing"
)

func TestParseAddr(t *testing.T) {
	a, err := ParseAddr("tcp:0.0.0.0:8080")
	if err != nil || a.Net != "tcp" || a.Port != 8080 || a.String() != "0.0.0.0:8080" {
		t.Fatalf("ParseAddr = %+v, %v", a, err)
	}

	a, err = ParseAddr("udp:[::1]:53")
	if err != nil || a.Host != "::1" {
		t.Fatalf("ParseAddr v6 = %+v, %v", a, err)
	}

	for _, bad := range []string{"unix:/run/x.sock", "tcp:host:80", "tcp:127.0.0.1:80-90", "tcp:127.0.0.1:0", "tcp:127.0.0.1"} {
		_, err := ParseAddr(bad)
		if err == nil {
			t.Errorf("ParseAddr(%q) accepted", bad)
		}
	}
}

// TestForwardTCP forwards through serveTCP with dials made in a network namespace (our
// own: joining it needs root, as the real one does).
func TestForwardTCP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setns needs root")
	}

	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}

			_, _ = c.Write([]byte("backend\n"))
			_ = c.Close()
		}
	}()

	ns, err := os.Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}

	defer ns.Close()
	target, _ := ParseAddr("tcp:" + backend.Addr().String())
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer front.Close()
	go func() { _ = serveTCP(front, func() (net.Conn, error) { return dialIn(ns, target) }) }()

	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "backend\n" {
		t.Fatalf("through the proxy: %q %v", line, err)
	}
}
