// Package initns is the mount namespace copier (initns.c): a C constructor, so it
// runs before the Go runtime starts, in a single-threaded process that may join a user
// namespace. lxd/container starts it as part of berth-init (lxd/berth-init links it) or,
// without that binary, of berthd (lxd/container links it).
package initns

// #cgo CFLAGS: -Wall -std=gnu99
import "C"

// EnvUserns is the variable of the constructor's mode, for lxd/container, which starts
// the process that uses it: it names an inherited fd of a container's user namespace,
// which the process joins before copying its mount namespace; it talks on fd 3.
const EnvUserns = "_BERTH_INIT_USERNS_FD"
