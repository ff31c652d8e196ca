package device

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/proxy"
	"github.com/berth-dev/berth/lxd/setup"
)

// proxyDevice forwards a host address to one inside the container (listen, connect; TCP
// or UDP) through a `berthd __proxy` process per device that lives as long as the
// container's init: it survives daemon restarts and ends by itself when the container
// stops. Its pid is kept in the instance's device directory for hot removal. The process
// runs inside the container's network namespace as the container root's host uid, with
// no capabilities and no_new_privs, and bounds its connections and UDP flows (package
// proxy).
type proxyDevice struct{}

func (proxyDevice) validate(conf map[string]string) error {
	err := onlyKeys(conf, "listen", "connect", "bind")
	if err != nil {
		return err
	}

	if conf["bind"] != "" && conf["bind"] != "host" {
		return fmt.Errorf("\"bind\": only \"host\" is supported")
	}

	l, err := proxy.ParseAddr(conf["listen"])
	if err != nil {
		return fmt.Errorf("\"listen\": %w", err)
	}

	c, err := proxy.ParseAddr(conf["connect"])
	if err != nil {
		return fmt.Errorf("\"connect\": %w", err)
	}

	if l.Net != c.Net {
		return fmt.Errorf("\"listen\" and \"connect\" must use the same protocol")
	}

	return nil
}

func (proxyDevice) prepare(*run) ([]setup.Mount, error) { return nil, nil }

func (p proxyDevice) started(r *run) error { return p.attach(r) }

func (proxyDevice) attach(r *run) error {
	listen, err := proxy.ParseAddr(r.conf["listen"])
	if err != nil {
		return err
	}

	err = os.MkdirAll(r.stage, 0o711)
	if err != nil {
		return err
	}

	killProxy(r.stagePath() + ".pid")

	// What needs privilege is done here: the host socket bound, the init's pidfd and
	// network namespace opened. The proxy itself gets none (proxy.Spawn).
	sock, err := proxy.Listen(listen)
	if err != nil {
		return fmt.Errorf("proxy %s: %w", r.conf["listen"], err)
	}

	defer func() { _ = sock.Close() }()

	pidfd, err := unix.PidfdOpen(r.initPID, 0)
	if err != nil {
		return fmt.Errorf("opening pidfd of %d: %w", r.initPID, err)
	}

	pidFile := os.NewFile(uintptr(pidfd), "init-pidfd")
	defer func() { _ = pidFile.Close() }()

	netns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", r.initPID))
	if err != nil {
		return fmt.Errorf("opening network namespace of %d: %w", r.initPID, err)
	}

	defer func() { _ = netns.Close() }()

	logf, err := os.OpenFile(r.stagePath()+".log", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}

	defer func() { _ = logf.Close() }()

	rd, w, err := os.Pipe()
	if err != nil {
		return err
	}

	defer func() { _ = rd.Close() }()

	cmd := &exec.Cmd{
		Path:        r.exe,
		Args:        []string{"berth-proxy", proxy.Helper, r.conf["listen"], r.conf["connect"]},
		Env:         []string{},
		Stdout:      logf,
		Stderr:      logf,
		ExtraFiles:  []*os.File{w, sock, pidFile},
		Dir:         "/",
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}

	// As the container root's host uid: a uid nothing on the host but this container
	// has, and the container cannot name processes outside its pid namespace.
	err = proxy.Spawn(cmd, netns, uint32(r.ids.HostUID), uint32(r.ids.HostGID))
	_ = w.Close()
	if err != nil {
		return fmt.Errorf("starting proxy: %w", err)
	}

	// Our child until we exit; reap it whenever it ends.
	go func() { _ = cmd.Wait() }()

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(rd).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()

	select {
	case s := <-line:
		if s != "ok" {
			_ = cmd.Process.Kill()
			if s == "" {
				s = "exited at start"
			}

			return fmt.Errorf("proxy %s -> %s: %s", r.conf["listen"], r.conf["connect"], s)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("proxy %s did not start", r.conf["listen"])
	}

	return os.WriteFile(r.stagePath()+".pid", []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
}

func (proxyDevice) detach(r *run) error {
	killProxy(r.stagePath() + ".pid")
	return nil
}

// killProxy ends the proxy named by a pid file, if that pid still is one of ours: a
// pidfd is taken first and the command line checked through it, so a reused pid is
// never signalled.
func killProxy(pidFile string) {
	defer func() { _ = os.Remove(pidFile) }()

	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}

	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}

	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}

	defer func() { _ = unix.Close(fd) }()

	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "\x00"+proxy.Helper+"\x00") {
		return
	}

	err = unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
	if err != nil {
		return
	}

	// Wait for it to go so that its port is free for a replacement.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, err := unix.Poll(fds, 100)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			return
		}
	}
}
