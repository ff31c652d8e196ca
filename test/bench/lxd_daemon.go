package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lxdDaemon is a private LXD (the real one, from Debian's lxd package) in its own LXD_DIR,
// with a dir storage pool inside that directory and no network.
type lxdDaemon struct {
	dir    string // holds LXD_DIR (d), the pool (p: LXD refuses one inside LXD_DIR), the client config (c), logs
	prefix string // instance names start with it, so leftovers are recognisably ours
	cmd    *exec.Cmd
	done   chan struct{} // closed once the daemon process has been reaped
}

// lxdPreseed creates a dir pool and a default profile with a root disk and nothing else:
// no bridge, so nothing can leave the machine. Image auto-update is off for the same reason.
const lxdPreseed = `config:
  images.auto_update_interval: "0"
storage_pools:
- name: default
  driver: dir
  config:
    source: %s
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
`

// startLXD starts the daemon, initialises it and imports image as "debian12". On error,
// everything started so far is already cleaned up.
func startLXD(ctx context.Context, image string) (_ *lxdDaemon, err error) {
	// Short path: LXD puts unix sockets under it.
	dir, err := os.MkdirTemp("/tmp", "lxb-")
	if err != nil {
		return nil, err
	}

	l := &lxdDaemon{dir: dir, prefix: "lb" + strings.TrimPrefix(filepath.Base(dir), "lxb-") + "-"}
	defer func() {
		if err != nil {
			for _, p := range l.close() {
				fmt.Fprintf(os.Stderr, "LXD cleanup: %s\n", p)
			}
		}
	}()

	// Containers' root users must be able to traverse down to their rootfs.
	err = os.Chmod(dir, 0o711)
	if err != nil {
		return l, err
	}

	for _, sub := range []string{"d", "p", "c"} {
		err = os.Mkdir(filepath.Join(dir, sub), 0o711)
		if err != nil {
			return l, err
		}
	}

	log := filepath.Join(dir, "lxd.log")
	out, err := os.Create(filepath.Join(dir, "lxd.out"))
	if err != nil {
		return l, err
	}

	defer out.Close()
	l.cmd = exec.Command("lxd", "--group", "root", "--logfile", log)
	// The proxy variables point at a closed local port: LXD fetches instance types from
	// images.linuxcontainers.org at start-up, and that request must fail here, not leave.
	l.cmd.Env = append(os.Environ(), "LXD_DIR="+l.lxdDir(),
		"http_proxy=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=", "no_proxy=")
	l.cmd.Stdout, l.cmd.Stderr = out, out
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = l.cmd.Start()
	if err != nil {
		return l, fmt.Errorf("starting lxd: %w", err)
	}

	l.done = make(chan struct{})
	go func() {
		_ = l.cmd.Wait()
		close(l.done)
	}()

	err = l.run(ctx, nil, "lxd", "waitready", "--timeout", "60")
	if err != nil {
		return l, fmt.Errorf("waiting for lxd: %w (log: %s)", err, l.logTail())
	}

	preseed := fmt.Sprintf(lxdPreseed, filepath.Join(dir, "p"))
	err = l.run(ctx, strings.NewReader(preseed), "lxd", "init", "--preseed")
	if err != nil {
		return l, fmt.Errorf("initialising lxd: %w (log: %s)", err, l.logTail())
	}

	// A fresh LXD_CONF makes the first command print a welcome hint.
	_, _ = l.lxc(ctx, "list")
	_, err = l.lxc(ctx, "image", "import", image, "--alias", "debian12")
	if err != nil {
		return l, err
	}

	return l, nil
}

func (l *lxdDaemon) lxdDir() string { return filepath.Join(l.dir, "d") }

// run runs a command with the daemon's LXD_DIR, stdin from in.
func (l *lxdDaemon) run(ctx context.Context, in *strings.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LXD_DIR="+l.lxdDir())
	if in != nil {
		cmd.Stdin = in
	}

	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, trim(string(out)))
	}

	return nil
}

// lxc runs the stock client against the daemon and returns its standard output.
func (l *lxdDaemon) lxc(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "lxc", args...)
	cmd.Env = append(os.Environ(), "LXD_DIR="+l.lxdDir(), "LXD_CONF="+filepath.Join(l.dir, "c"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("lxc %s: %w: %s", strings.Join(args, " "), err, trim(stderr.String()))
	}

	return string(out), nil
}

// start runs `lxc launch` or `lxc start`; on failure the error carries liblxc's log.
func (l *lxdDaemon) start(ctx context.Context, args ...string) error {
	_, err := l.lxc(ctx, args...)
	if err != nil {
		name := args[len(args)-1]
		log, _ := l.lxc(ctx, "info", "--show-log", name)
		_, log, _ = strings.Cut(log, "\nLog:\n")
		return fmt.Errorf("%w\nliblxc log of %s:\n%s", err, name, trim(log))
	}

	return nil
}

// initPID asks LXD for the host pid of an instance's init: one request, like `berth list`.
func (l *lxdDaemon) initPID(ctx context.Context, name string) (int, error) {
	out, err := l.lxc(ctx, "query", "/1.0/instances/"+name+"/state")
	if err != nil {
		return 0, err
	}

	var st struct {
		Pid int `json:"pid"`
	}

	err = json.Unmarshal([]byte(out), &st)
	if err != nil {
		return 0, fmt.Errorf("decoding the state of %q: %w", name, err)
	}

	if st.Pid <= 0 {
		return 0, fmt.Errorf("%q has no init pid", name)
	}

	return st.Pid, nil
}

// logTail returns the last lines of the daemon's log, for error messages.
func (l *lxdDaemon) logTail() string {
	data, _ := os.ReadFile(filepath.Join(l.dir, "lxd.log"))
	more, _ := os.ReadFile(filepath.Join(l.dir, "lxd.out"))
	lines := strings.Split(trim(string(data)+"\n"+string(more)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}

	return strings.Join(lines, " | ")
}

// stopDaemon sends SIGTERM to the daemon (its instances must be gone by then: LXD leaves
// running containers alone on SIGTERM), then SIGKILL if it is still there after 30 s.
func (l *lxdDaemon) stopDaemon() error {
	if l.done == nil {
		return nil
	}

	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
		return nil
	case <-time.After(30 * time.Second):
	}

	_ = l.cmd.Process.Kill()
	<-l.done
	return fmt.Errorf("lxd ignored SIGTERM for 30 s, killed")
}
