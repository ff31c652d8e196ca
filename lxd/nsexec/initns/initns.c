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
// $_BERTH_INIT_USERNS_FD=<fd>: the container's user namespace. The monitor
// starts this process ahead (a spare monitor while it waits), in its own
// mount namespace. On the sync socket (fd 3, lxd/setup/sync.go):
//
//  0. send {"type":"copier-started"}: the dynamic loader is done;
//  1. wait for the line {"type":"copy-mount-ns"} (the tree is built and
//     pivoted) with, in the same message, an fd of the mount namespace the
//     monitor's thread built it in (SCM_RIGHTS); anything else, or EOF, and
//     exit 1;
//  2. setns into that mount namespace (its root is the container's tree);
//     setns(fd, CLONE_NEWUSER) into the container's user namespace, close
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
#include <sys/socket.h>
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

// initns_wait reads the go line and the mount namespace fd that comes with it, exactly
// the line's bytes, so nothing after it is taken; it returns the fd.
static int initns_wait(void)
{
	const char *want = INITNS_GO;
	size_t len = strlen(want), got = 0;
	char buf[sizeof(INITNS_GO)];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct cmsghdr *c;
	struct iovec iov;
	struct msghdr m;
	int fd = -1;
	ssize_t n;

	while (got < len) {
		memset(&m, 0, sizeof(m));
		iov.iov_base = buf + got;
		iov.iov_len = len - got;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = u.b;
		m.msg_controllen = sizeof(u.b);

		do
			n = recvmsg(INITNS_SYNC_FD, &m, MSG_CMSG_CLOEXEC);
		while (n < 0 && errno == EINTR);

		if (n <= 0 || (m.msg_flags & MSG_CTRUNC))
			_exit(1);

		c = CMSG_FIRSTHDR(&m);
		if (c != NULL) {
			if (fd >= 0 || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
			    c->cmsg_len != CMSG_LEN(sizeof(int)))
				_exit(1);

			memcpy(&fd, CMSG_DATA(c), sizeof(int));
		}

		got += (size_t)n;
	}

	if (memcmp(buf, want, len) != 0 || fd < 0)
		_exit(1);

	return fd;
}

__attribute__((constructor)) static void initns(void)
{
	const char *env = getenv(INITNS_USERNS_ENV);
	char *end;
	long fd;
	int mnt;
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

	mnt = initns_wait();

	if (setns(mnt, CLONE_NEWNS) < 0)
		initns_fail("setns(mount namespace)");

	close(mnt);

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
