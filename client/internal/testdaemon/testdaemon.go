// Package testdaemon runs berthd's real API over fake instances for the
// client and CLI tests: the lxd package's test binary in its fake-daemon mode
// (lxd/fake_daemon_test.go), behind a recording proxy. A change to the
// protocol on either side then fails a test, where a hand-kept imitation of
// the server would not notice. The package imports no daemon code: it builds
// and runs the binary.
package testdaemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Config seeds a fake daemon; it is the JSON the daemon reads (fakeConfig
// in lxd/fake_daemon_test.go).
type Config struct {
	// OpDelay is how long instance actions (create, start, stop, ...) take.
	OpDelay time.Duration `json:"op_delay"`
	// FailStart, when set, fails every start with this message.
	FailStart string `json:"fail_start,omitempty"`
	// ConsoleLog is every instance's console log.
	ConsoleLog string `json:"console_log,omitempty"`

	Instances []Instance `json:"instances,omitempty"`
	Images    []Image    `json:"images,omitempty"`
	// Cluster makes the daemon the first of these members of a fake cluster.
	Cluster []Member `json:"cluster,omitempty"`
}

// Member is a seeded cluster member (a row of the members table).
type Member struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Offline   bool   `json:"offline,omitempty"` // its last heartbeat a minute old
	Evacuated bool   `json:"evacuated,omitempty"`
}

// Instance is a seeded instance; Status is Running, Stopped or Frozen.
type Instance struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Image is a seeded image record (no file behind it).
type Image struct {
	Fingerprint string   `json:"fingerprint"`
	Aliases     []string `json:"aliases,omitempty"`
}

// DefaultOpDelay keeps operations running long enough to be waited for.
const DefaultOpDelay = 20 * time.Millisecond

// Daemon is a running fake berthd.
type Daemon struct {
	// Socket is where clients connect: the recording proxy.
	Socket string

	*proxy
}

// Start builds the fake daemon (once per test binary), starts it with cfg
// and stops it with t.Cleanup.
func Start(t testing.TB, cfg Config) *Daemon {
	t.Helper()

	bin := build(t)

	// Socket paths are limited to ~108 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "berthfake")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	state := filepath.Join(dir, "state")
	full := struct {
		Config
		Dir string `json:"dir"`
	}{cfg, state}

	data, _ := json.Marshal(full)
	cfgPath := filepath.Join(dir, "config.json")

	err = os.WriteFile(cfgPath, data, 0o600)
	if err != nil {
		t.Fatal(err)
	}

	err = os.Mkdir(state, 0o700)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "BERTH_FAKE_DAEMON="+cfgPath)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	// The daemon stops when its stdin closes, even if this process is killed.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}

	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}

	err = cmd.Start()
	if err != nil {
		t.Fatalf("starting the fake daemon: %v", err)
	}

	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})

	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected output %q", line)
		}

		ready <- err
	}()

	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("fake daemon did not start: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fake daemon did not start within 30 s")
	}

	p, err := startProxy(filepath.Join(dir, "proxy.socket"), filepath.Join(state, "unix.socket"))
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(p.close)

	return &Daemon{Socket: p.socket, proxy: p}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// build compiles github.com/berth-dev/berth/lxd's test binary into a
// directory removed by Cleanup (call it from TestMain).
func build(t testing.TB) string {
	t.Helper()

	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berthfake-bin")
		if err != nil {
			buildErr = err
			return
		}

		buildPath = filepath.Join(dir, "berthd.test")
		// go test puts its own go first on the tests' PATH. cgo is not
		// optional for berthd (sqlite, nsexec). Without debug information
		// the link, which every test run pays, is faster.
		cmd := exec.Command("go", "test", "-c", "-ldflags=-s -w", "-o", buildPath, "github.com/berth-dev/berth/lxd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")

		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the fake daemon: %w\n%s", err, out)
		}
	})

	if buildErr != nil {
		t.Fatal(buildErr)
	}

	return buildPath
}

// Cleanup removes the built binary; call it at the end of TestMain.
func Cleanup() {
	if buildPath != "" {
		_ = os.RemoveAll(filepath.Dir(buildPath))
	}
}
