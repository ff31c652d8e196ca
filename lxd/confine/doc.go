// Package confine holds what the kernel enforces on a container's processes
// besides namespaces and cgroups, for its init (lxd/setup) and for every
// exec'd command (lxd/nsexec) alike:
//
//   - a seccomp filter (policy.go, compile.go): LXD's default deny list,
//     the same list for the 32-bit i386 entry points, x32 blocked, and the
//     security.syscalls.* keys;
//   - a fresh anonymous session keyring (keyring.go), so that nothing in a
//     container possesses the daemon's session keyring;
//   - the capability bounding set (caps.go).
//
// The loaders run between fork and exec in half-built processes: they use
// the standard library and x/sys/unix only, keep no state and allocate
// nothing the kernel call does not need. The compiler runs in the daemon.
package confine
