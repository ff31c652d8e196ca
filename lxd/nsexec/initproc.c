// initproc: the first thing the container's init-to-be (`__init`, lxd/container/child.go)
// does, before its Go runtime starts: make a procfs fs_context and send it to the monitor.
//
// Why here: the container's /proc must be a procfs of its pid namespace, and only a
// process of that namespace can make one; the monitor's host side mounts it, with the
// masks over it, in the tree it builds for init (lxd/container/namespaces.go). Made once
// init's Go runtime had started and read its config, it arrived 3-4 ms after the exec on
// the development VM, and the rest of the tree waited for it: the longest stretch of a
// start before systemd ran. Made here it arrives as soon as the dynamic loader is done,
// and the host side builds the tree while the runtime starts.
//
// $_BERTH_INIT_PROC=1: unset it, fsopen("proc"), and send the line
// {"type":"proc-context"} with the fd attached (SCM_RIGHTS, one sendmsg:
// lxd/container/sync_fd.go) on the sync socket (fd 3); close the fd and return, and the
// Go runtime starts. On failure an {"type":"error"} line instead, and exit 1.

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif

#define INITPROC_ENV "_BERTH_INIT_PROC"
#define INITPROC_SYNC_FD 3
#define INITPROC_FSOPEN_CLOEXEC 0x00000001
#define INITPROC_MSG "{\"type\":\"proc-context\"}\n"

static void initproc_fail(const char *what)
{
	int err = errno;

	dprintf(INITPROC_SYNC_FD, "{\"type\":\"error\",\"error\":\"%s: %s\"}\n", what, strerror(err));
	_exit(1);
}

__attribute__((constructor)) static void initproc(void)
{
	static char line[] = INITPROC_MSG;
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = line, .iov_len = sizeof(line) - 1};
	struct msghdr msg = {0};
	struct cmsghdr *cmsg;
	const char *env = getenv(INITPROC_ENV);
	ssize_t n;
	int fd;

	if (env == NULL || strcmp(env, "1") != 0)
		return;

	unsetenv(INITPROC_ENV);

	fd = (int)syscall(SYS_fsopen, "proc", INITPROC_FSOPEN_CLOEXEC);
	if (fd < 0)
		initproc_fail("opening a procfs context");

	memset(control, 0, sizeof(control));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control;
	msg.msg_controllen = sizeof(control);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));

	do
		n = sendmsg(INITPROC_SYNC_FD, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);

	if (n != (ssize_t)iov.iov_len)
		initproc_fail("sending the procfs context");

	close(fd);
}
