package container

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/setup"
	"golang.org/x/sys/unix"
)

// hostSide is the running `__init-host` process of one start (namespaces.go).
type hostSide struct {
	cmd   *exec.Cmd
	sock  *os.File
	dec   *json.Decoder
	ready bool // it has reported the mount namespace and only waits to exit
}

// startHost starts the host side of init p's setup and sends it cfg. The
// container's root console gets its error messages, like init's.
func startHost(p *initProc, cfg setup.Config, deadline time.Time) (*hostSide, error) {
	userns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", p.pid()))
	if err != nil {
		return nil, fmt.Errorf("opening the container's user namespace: %w", err)
	}

	defer func() { _ = userns.Close() }()

	parentSock, childSock, err := syncPair("host")
	if err != nil {
		return nil, err
	}

	cmd := &exec.Cmd{
		Path:       "/proc/self/exe", // the sealed copy we run from
		Args:       []string{"berth-init-host", helperInitHost},
		Env:        []string{},
		Stderr:     p.slave,
		ExtraFiles: []*os.File{childSock, userns}, // initSyncFD, initUsernsFD
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWNS,
		},
	}

	err = startHostSide(p.pid(), cmd)
	_ = childSock.Close()

	if err != nil {
		_ = parentSock.Close()
		return nil, err
	}

	h := &hostSide{cmd: cmd, sock: parentSock, dec: json.NewDecoder(parentSock)}
	_ = parentSock.SetDeadline(deadline)

	err = json.NewEncoder(parentSock).Encode(syncMsg{Type: syncConfig, Version: syncVersion, Config: &cfg})
	if err != nil {
		h.stop()
		return nil, fmt.Errorf("sending config to the host side: %w", err)
	}

	return h, nil
}

// mountNS waits for the host side to have built and copied the container's
// mount tree, and opens that mount namespace.
func (h *hostSide) mountNS() (*os.File, error) {
	_, err := expectFromChild(h.dec, syncMountNSReady)
	if err != nil {
		return nil, fmt.Errorf("host side: %w", err)
	}

	h.ready = true

	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", h.cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening the container's mount namespace: %w", err)
	}

	return f, nil
}

// stop ends the host side and reaps it: once ready it exits when its
// socket closes; before, it is killed.
func (h *hostSide) stop() {
	_ = h.sock.Close()

	if !h.ready {
		_ = h.cmd.Process.Kill()
	}

	_ = h.cmd.Wait()
}
