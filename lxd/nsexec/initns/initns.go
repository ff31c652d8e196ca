// Package initns holds two C constructors, so they run before the Go runtime starts, in
// a single-threaded process that may make or join a user namespace: the mount namespace
// copier (initns.c) and the maker of a container's init (initclone.c). lxd/container
// starts them as part of berth-init (lxd/berth-init links them) or, without that binary,
// of berthd (lxd/container links them).
package initns

// #cgo CFLAGS: -Wall -std=gnu99
import "C"

// EnvUserns is the variable of the constructor's mode, for lxd/container, which starts
// the process that uses it: it names an inherited fd of a container's user namespace,
// which the process joins before copying its mount namespace; it talks on fd 3.
const EnvUserns = "_BERTH_INIT_USERNS_FD"

// EnvClone is the variable of the init-making mode (initclone.c): it names an inherited
// SOCK_SEQPACKET socket to the monitor; fd 3 is init's sync socket, fds 0-2 its console.
const EnvClone = "_BERTH_INIT_CLONE_FD"
