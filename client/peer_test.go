package client

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// listenEnv makes the test binary a process that listens on the socket it names and
// waits to be killed: run as "berthd", it stands for the daemon.
const listenEnv = "BERTH_CLIENT_TEST_LISTEN"

func init() {
	if sock := os.Getenv(listenEnv); sock != "" {
		l, err := net.Listen("unix", sock)
		if err != nil {
			os.Exit(1)
		}

		for {
			c, err := l.Accept()
			if err == nil {
				_ = c.Close()
			}
		}
	}
}

// TestServedByBerthd: a socket berthd listens on is berthd's; one another process listens
// on (this test, an LXD) is not, nor is a socket nobody listens on.
func TestServedByBerthd(t *testing.T) {
	dir := t.TempDir()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	berthd := filepath.Join(dir, "berthd") // the kernel names the process after it
	if err := os.Symlink(self, berthd); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "berthd.socket")
	cmd := exec.Command(berthd)
	cmd.Env = append(os.Environ(), listenEnv+"="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	// Until it accepts: its socket file exists from the bind, before it listens.
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			_ = c.Close()
			break
		}

		if i == 1000 {
			t.Fatal("the stand-in daemon does not listen")
		}

		time.Sleep(5 * time.Millisecond)
	}

	other := filepath.Join(dir, "other.socket")
	l, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = l.Close() })

	for _, c := range []struct {
		path string
		want bool
	}{{sock, true}, {other, false}, {filepath.Join(dir, "none.socket"), false}} {
		got := (&Client{socketPath: c.path, unix: &unixDialer{path: c.path}}).ServedByBerthd()
		if got != c.want {
			t.Errorf("%s: served by berthd %v, want %v", filepath.Base(c.path), got, c.want)
		}
	}

	if (&Client{}).ServedByBerthd() {
		t.Error("a client over HTTPS is served by berthd")
	}
}
