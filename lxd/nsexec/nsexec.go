// Package nsexec runs a command inside a running container: it joins all
// the container's namespaces and its cgroups, then sets credentials, cwd,
// environment and stdio, and execs. It, lxd/nsexec/initns (the mount namespace
// copier) and lxd/idmap (the holder of a new user namespace) are Berth's cgo packages.
//
// Two ways, sharing the C constructor and the protocol's socket. A Server
// (server.go, server_main.go) is one long-lived process per container that
// forks each command: an exec costs a fork. Start, below, spends a process
// per command; it is for hosts where a server cannot place its commands in
// init's cgroup2 group (nsdelegate).
//
// Processes, for one exec with Start (the daemon is the parent of both):
//
//	berthd ──fork/exec sealed binary──▶ A "__exec" (host namespaces)
//	   │ Prepare(A): A into init's cgroups     C constructor (nsexec.c):
//	   │ header: pidfd of init, flags ───▶    setns(pidfd, all), non-dumpable,
//	   │                                      clone(CLONE_PARENT) ─▶ B; reply pid; exit
//	   │ ◀─── reply {pid B}
//	   │ config (JSON) ─────────────────────────────────▶ B: Go runtime, inside
//	   │ ◀─── pty master (SCM_RIGHTS), if asked            (helper.go) pty, setsid,
//	   │ ◀─── error, or EOF once exec succeeded            creds, cwd, close fds, exec
//	   └── waits for B through a pidfd
//
// All messages travel on one SOCK_SEQPACKET socketpair (message boundaries
// kept), named to the child by $_BERTH_NSEXEC_FD. The cgroup move happens
// in A before the fork, so B and the command never run outside the
// container's cgroups.
package nsexec

// #cgo CFLAGS: -Wall -std=gnu99
import "C"

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	envFD   = "_BERTH_NSEXEC_FD"
	magic   = 0x42525448 // "BRTH", as in nsexec.c
	version = 2

	// modeServe, in the header, starts an exec server instead of one command.
	modeServe = 1

	// HelperArg is the hidden subcommand the daemon's main dispatches to
	// HelperMain.
	HelperArg = "__exec"
)

// Namespaces are the namespaces an exec joins: all of a container's.
const Namespaces = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// header and reply match struct nsexec_header and nsexec_reply in nsexec.c.
type header struct {
	Magic   uint32
	Version uint32
	PidFD   int32
	NSFlags uint32
	Mode    uint32
}

type reply struct {
	PID  int32
	Err  int32
	What [40]byte
}

func (h header) bytes() []byte {
	b := make([]byte, unsafe.Sizeof(h))
	binary.NativeEndian.PutUint32(b[0:], h.Magic)
	binary.NativeEndian.PutUint32(b[4:], h.Version)
	binary.NativeEndian.PutUint32(b[8:], uint32(h.PidFD))
	binary.NativeEndian.PutUint32(b[12:], h.NSFlags)
	binary.NativeEndian.PutUint32(b[16:], h.Mode)

	return b
}

func parseReply(b []byte) (reply, error) {
	var r reply
	if len(b) != int(unsafe.Sizeof(r)) {
		return r, fmt.Errorf("reply of %d bytes, want %d", len(b), unsafe.Sizeof(r))
	}

	r.PID = int32(binary.NativeEndian.Uint32(b[0:]))
	r.Err = int32(binary.NativeEndian.Uint32(b[4:]))
	copy(r.What[:], b[8:])

	return r, nil
}

func (r reply) err() error {
	return fmt.Errorf("entering the container: %s: %w", unix.ByteSliceToString(r.What[:]), unix.Errno(r.Err))
}

// config is what the daemon sends B after the fork.
type config struct {
	Command []string `json:"command"`
	Env     []string `json:"env"`
	UID     uint32   `json:"uid"`
	GID     uint32   `json:"gid"`
	Cwd     string   `json:"cwd"`
	PTY     bool     `json:"pty"`
	Width   uint16   `json:"width"`
	Height  uint16   `json:"height"`
}

// request asks the exec server for one command; with a pty it carries no
// fds, otherwise stdin, stdout and stderr.
type request struct {
	ID uint64 `json:"id"`
	config
}

// event is what the exec server sends: ready once it serves, then for each
// request started (with its pidfd and any pty master as fds) or failed,
// and exited once a started command has been reaped.
type event struct {
	Kind   string `json:"kind"`
	ID     uint64 `json:"id,omitempty"`
	PID    int    `json:"pid,omitempty"`
	PTY    bool   `json:"pty,omitempty"`
	Error  string `json:"error,omitempty"`
	Code   int    `json:"code,omitempty"`   // exit code for failed: 127, 126 or 1
	Status int    `json:"status,omitempty"` // raw wait status for exited
}

const (
	eventReady   = "ready"
	eventStarted = "started"
	eventFailed  = "failed"
	eventExited  = "exited"
)

// status is what B sends back: a pty master (with the fd attached), or a
// failure before exec.
type status struct {
	PTY   bool   `json:"pty,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"` // exit code B ends with: 127 not found, 126 not executable, 1 other
}
