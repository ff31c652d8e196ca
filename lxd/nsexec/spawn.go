package nsexec

import (
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// spawnHelper starts the sealed binary exe as a helper (one-shot or server)
// for the container whose init is initPID. In the helper, fd 3 is its end of
// a SOCK_SEQPACKET socket (named by $_BERTH_NSEXEC_FD), fd 4 a pidfd of
// init, and extra follow from fd 5; its environment carries init's bounding
// set and the seccomp program (confine.go); configure may set the rest of
// the command (stdio, environment). It returns the started command and the
// daemon's end of the socket, non-blocking; the C constructor is then
// waiting for its header.
func spawnHelper(exe string, initPID int, seccomp []byte, args []string, extra []*os.File, configure func(*exec.Cmd)) (*exec.Cmd, *os.File, error) {
	pidfd, err := unix.PidfdOpen(initPID, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening pidfd of init %d: %w", initPID, err)
	}

	pidfdFile := os.NewFile(uintptr(pidfd), "pidfd")
	defer func() { _ = pidfdFile.Close() }()

	confineEnv, err := confineEnv(pidfd, initPID, seccomp)
	if err != nil {
		return nil, nil, err
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("creating exec socket: %w", err)
	}

	_ = unix.SetNonblock(fds[0], true)
	sock := os.NewFile(uintptr(fds[0]), "exec-daemon")
	childSock := os.NewFile(uintptr(fds[1]), "exec-helper")

	cmd := &exec.Cmd{
		Path:       exe,
		Args:       args,
		Env:        append([]string{envFD + "=3"}, confineEnv...),
		ExtraFiles: append([]*os.File{childSock, pidfdFile}, extra...),
		Dir:        "/",
	}

	if configure != nil {
		configure(cmd)
	}

	err = cmd.Start()
	_ = childSock.Close()

	if err != nil {
		_ = sock.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", args[0], err)
	}

	return cmd, sock, nil
}
