// initns: the constructor mode that hands a container its locked mount tree
// (lxd/container/namespaces.go). Like nsexec.c, it runs before the Go runtime
// starts, while the process is still single-threaded, and does only what
// must happen there.
//
// Why: the container's mount tree (the /proc and /sys masks, the read-only
// binds, the device binds) is built by host root in a mount namespace owned
// by the initial user namespace. Copying that namespace from inside the
// container's user namespace makes the kernel lock every mount of the copy
// (MNT_LOCKED, and MNT_LOCK_READONLY/NOSUID/NODEV/NOEXEC where set), so the
// container's root can neither unmount nor remount them. Joining a user
// namespace needs a single-threaded process, hence C, and a process of its
// own: the monitor, which builds the tree on one of its threads, has many.
//
// $_BERTH_INIT_USERNS_FD=<fd>: this process was started from that thread, so
// it shares its mount namespace. On the sync socket (fd 3,
// lxd/setup/sync.go):
//
//  0. send {"type":"copier-started"}: the dynamic loader is done (the binary's
//     libraries, which the container's tree lacks, are loaded), so the
//     monitor may now pivot the root this process shares with its thread;
//  1. wait for the line {"type":"copy-mount-ns"} (the tree is built and
//     pivoted); anything else, or EOF, and exit 1;
//  2. setns(fd, CLONE_NEWUSER) into the container's user namespace, close
//     fd, unshare(CLONE_NEWNS): this process now sits alone in the locked
//     copy, owned by the container's user namespace;
//  3. send {"type":"mount-ns-ready"} and wait for EOF (the monitor opens
//     /proc/<pid>/ns/mnt for init meanwhile), then exit 0.
//
// On failure, an {"type":"error"} message instead, and exit 1.

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INITNS_USERNS_ENV "_BERTH_INIT_USERNS_FD"
#define INITNS_SYNC_FD 3
#define INITNS_STARTED "{\"type\":\"copier-started\"}\n"
#define INITNS_GO "{\"type\":\"copy-mount-ns\"}\n"

static void initns_fail(const char *what)
{
	int err = errno;

	dprintf(INITNS_SYNC_FD, "{\"type\":\"error\",\"error\":\"copying the mount namespace into the container's user namespace: %s: %s\"}\n",
		what, strerror(err));
	_exit(1);
}

// initns_wait reads the go line, byte by byte so nothing after it is taken.
static void initns_wait(void)
{
	const char *want = INITNS_GO;
	size_t i;
	ssize_t n;
	char c;

	for (i = 0; want[i] != '\0'; i++) {
		do
			n = read(INITNS_SYNC_FD, &c, 1);
		while (n < 0 && errno == EINTR);

		if (n != 1 || c != want[i])
			_exit(1);
	}
}

__attribute__((constructor)) static void initns(void)
{
	const char *env = getenv(INITNS_USERNS_ENV);
	char *end;
	long fd;
	char c;

	if (env == NULL || *env == '\0')
		return;

	fd = strtol(env, &end, 10);
	if (*end != '\0' || fd <= INITNS_SYNC_FD || fd > 1024) {
		errno = EBADF;
		initns_fail("bad " INITNS_USERNS_ENV);
	}

	if (dprintf(INITNS_SYNC_FD, INITNS_STARTED) < 0)
		_exit(1);

	initns_wait();

	if (setns((int)fd, CLONE_NEWUSER) < 0)
		initns_fail("setns");

	close((int)fd);

	if (unshare(CLONE_NEWNS) < 0)
		initns_fail("unshare");

	if (dprintf(INITNS_SYNC_FD, "{\"type\":\"mount-ns-ready\"}\n") < 0)
		_exit(1);

	while (read(INITNS_SYNC_FD, &c, 1) < 0 && errno == EINTR)
		;

	_exit(0);
}
