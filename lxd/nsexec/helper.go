package nsexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/confine"
	"golang.org/x/sys/unix"
)

// IsHelper reports whether args ask for the exec helper or the exec server.
func IsHelper(args []string) bool {
	return len(args) > 1 && (args[1] == HelperArg || args[1] == ServerArg || args[1] == FilesArg)
}

// HelperMain runs the exec server if asked (server_main.go). Otherwise it is B, the Go side of an exec: the C constructor has already
// put this process in the container's namespaces (and the daemon in its
// cgroups). It returns only on failure, with the exit code to use.
func HelperMain() int {
	if IsServer(os.Args) {
		return ServerMain()
	}

	if isFiles(os.Args) {
		return filesMain()
	}

	fd, err := strconv.Atoi(os.Getenv(envFD))
	if err != nil || fd < 3 {
		fmt.Fprintln(os.Stderr, "berth exec helper: not started by the daemon")
		return 2
	}

	code, err := child(fd)
	//lint:ignore SA4023 child returns only on failure (it execs), the check documents that
	if err != nil {
		b, _ := json.Marshal(status{Error: err.Error(), Code: code})
		_ = unix.Sendmsg(fd, b, nil, nil, unix.MSG_NOSIGNAL)
	}

	return code
}

// child prepares and execs the command; on failure it returns the exit
// code and error to report.
func child(sock int) (int, error) {
	// Credentials are per thread in the kernel and execve takes the
	// calling thread's: change them on this thread only and exec from it,
	// rather than have glibc broadcast each change to every runtime thread.
	runtime.LockOSThread()

	buf := make([]byte, maxConfig)

	n, err := unix.Read(sock, buf)
	if err != nil {
		return 1, fmt.Errorf("reading config: %w", err)
	}

	var cfg config

	err = json.Unmarshal(buf[:n], &cfg)
	if err != nil || len(cfg.Command) == 0 {
		return 1, fmt.Errorf("decoding config: %v", err)
	}

	// Host root's uid is unmapped here: become the container's root first
	// (setns gave us every capability in its user namespace), so what we
	// open below belongs to a mapped owner.
	err = setCreds(0, 0, []int{})
	if err != nil {
		return 1, err
	}

	conf, err := readConfinement()
	if err == nil {
		err = conf.bound()
	}

	if err != nil {
		return 1, err
	}

	var tty *os.File

	if cfg.PTY {
		tty, err = openPTY(sock, cfg)
		if err != nil {
			return 1, err
		}
	}

	// A session of our own: the daemon's controlling terminal (berthd in
	// a shell) must never be reachable as /dev/tty from inside.
	_, err = unix.Setsid()
	if err != nil {
		return 1, fmt.Errorf("creating session: %w", err)
	}

	if tty != nil {
		err = attachTTY(tty)
		if err != nil {
			return 1, err
		}
	}

	env, groups, cwd := cfg.userContext()

	// The filter while we are still the container's root: loading it
	// without no_new_privs needs CAP_SYS_ADMIN there.
	err = confine.Load(conf.seccomp)
	if err != nil {
		return 1, err
	}

	err = setCreds(int(cfg.UID), int(cfg.GID), groups)
	if err != nil {
		return 1, err
	}

	// Owned by the command's user, as a login session's would be.
	err = confine.JoinSessionKeyring()
	if err != nil {
		return 1, err
	}

	// setns put us at the container's root; every path is resolved inside.
	err = unix.Chdir(cwd)
	if err != nil {
		return 1, fmt.Errorf("changing directory to %q: %w", cwd, err)
	}

	path, err := lookPath(cfg.Command[0], envValue(env, "PATH"), "")
	if err != nil {
		return execCode(err), err
	}

	// Nothing of the host survives exec: the sealed binary's memfd, the
	// socket and any fd the runtime opened are close-on-exec from here.
	err = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != nil {
		return 1, fmt.Errorf("marking fds close-on-exec: %w", err)
	}

	err = unix.Exec(path, cfg.Command, env)

	return execCode(err), fmt.Errorf("executing %q: %w", cfg.Command[0], err)
}

// maxConfig bounds the config message (command and environment).
const maxConfig = 1 << 20

// execCode maps an exec failure to LXD's exit codes.
func execCode(err error) int {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return 127
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EPERM):
		return 126
	}

	return 1
}

// setCreds changes the calling thread's credentials (the caller is locked
// to its thread). unix.Setgroups is per thread; unix.Setresuid is not, so
// the raw system calls.
func setCreds(uid, gid int, groups []int) error {
	err := unix.Setgroups(groups)
	if err != nil {
		return fmt.Errorf("setting groups %v: %w", groups, err)
	}

	_, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid))
	if errno != 0 {
		return fmt.Errorf("setting gid %d: %w", gid, errno)
	}

	_, _, errno = unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid))
	if errno != 0 {
		return fmt.Errorf("setting uid %d: %w", uid, errno)
	}

	return nil
}

// openPTY allocates a pty, hands the master to the daemon and returns the
// slave.
func openPTY(sock int, cfg config) (*os.File, error) {
	master, tty, err := allocPTY(cfg)
	if err != nil {
		return nil, err
	}

	defer func() { _ = master.Close() }()

	b, _ := json.Marshal(status{PTY: true})

	err = unix.Sendmsg(sock, b, unix.UnixRights(int(master.Fd())), nil, unix.MSG_NOSIGNAL)
	if err != nil {
		_ = tty.Close()
		return nil, fmt.Errorf("sending pty master: %w", err)
	}

	return tty, nil
}

// allocPTY allocates a pty on the container's devpts (so `tty` names it
// inside), owned by cfg.UID and sized as asked. The calling thread must be
// the container's root: the new slave belongs to whoever opens it, and an
// owner unmapped in the container could not be changed.
func allocPTY(cfg config) (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}

	master = os.NewFile(uintptr(m), "pty-master")

	err = unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0)
	if err != nil {
		_ = master.Close()
		return nil, nil, fmt.Errorf("unlocking pty: %w", err)
	}

	// TIOCGPTPEER opens the peer of this very master, no path lookup.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		_ = master.Close()
		return nil, nil, fmt.Errorf("opening pty slave: %w", errno)
	}

	slave = os.NewFile(s, "pty")

	err = unix.Fchown(int(s), int(cfg.UID), -1)
	if err == nil {
		err = unix.Fchmod(int(s), 0o620)
	}

	if err == nil && cfg.Width > 0 && cfg.Height > 0 {
		err = unix.IoctlSetWinsize(m, unix.TIOCSWINSZ, &unix.Winsize{Col: cfg.Width, Row: cfg.Height})
	}

	if err != nil {
		_ = master.Close()
		_ = slave.Close()

		return nil, nil, fmt.Errorf("preparing pty: %w", err)
	}

	return master, slave, nil
}

// attachTTY makes tty the controlling terminal and stdio.
func attachTTY(tty *os.File) error {
	fd := int(tty.Fd())

	err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0)
	if err != nil {
		return fmt.Errorf("setting controlling terminal: %w", err)
	}

	for i := 0; i < 3; i++ {
		err = unix.Dup3(fd, i, 0)
		if err != nil {
			return fmt.Errorf("duplicating tty to fd %d: %w", i, err)
		}
	}

	if fd > 2 {
		_ = tty.Close()
	}

	return nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		k, v, ok := strings.Cut(env[i], "=")
		if ok && k == key {
			return v
		}
	}

	return ""
}

// userContext is what the command's user brings: the environment with HOME and USER,
// the supplementary groups, and the directory to start in (the home unless asked).
// Users and groups come from the container's own files, parsed here: os/user would
// have glibc load NSS modules from the container.
func (cfg config) userContext() (env []string, groups []int, cwd string) {
	u := lookupUser(cfg.UID)

	cwd = cfg.Cwd
	if cwd == "" {
		cwd = u.home
	}

	return withUserEnv(cfg.Env, u), supplementaryGroups(u.name, cfg.GID), cwd
}

// withUserEnv adds HOME and USER from the passwd entry unless given.
func withUserEnv(env []string, u user) []string {
	if u.name != "" && envValue(env, "USER") == "" {
		env = append(env, "USER="+u.name)
	}

	if envValue(env, "HOME") == "" {
		env = append(env, "HOME="+u.home)
	}

	return env
}
