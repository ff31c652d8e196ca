// initclone: the constructor mode that makes a container's init ahead of its start,
// without the monitor forking itself (lxd/container/initclone.go).
//
// Why: cloning init straight from the monitor, a Go process, means a full fork of it
// (a new user namespace rules out vfork), a new network namespace, then an exec of
// berth-init and its runtime's start: about 2 ms on the development VM, then 1-2 ms more
// for init's Go runtime, all on the path from `berth start` to systemd. This process is
// exec'd ahead of that, while a spare monitor waits (spare.go), and makes init at once:
// its namespaces, its fork and its Go runtime's start happen before the container is
// known. What depends on the container is init's first act once it has its config
// (setup.InitMain): the id maps, written by the monitor before it sends the config,
// make it the container's root, and a copy of the host's mount namespace made then
// shows the mounts the daemon staged for this start.
//
// $_BERTH_INIT_CLONE_FD=<fd>: a SOCK_SEQPACKET socket to the monitor. Fd 3 is init's
// sync socket (lxd/setup/sync.go), fds 0-2 the console's pty.
//
//  1. unshare the user, network, uts, ipc and pid namespaces (the user namespace first,
//     which owns the others), still unmapped;
//  2. fork with CLONE_PARENT, so the monitor is the child's parent, and the child, the
//     first process of the new pid namespace, is the container's init; reply {pid of
//     the child}, exit 0. The child makes the console its controlling terminal in a
//     session of its own and returns here: the Go runtime starts and runs
//     setup.InitMain, which waits for its config on fd 3 (and exits at EOF).
//
// On failure, a reply {pid -1, errno, step}, and exit 1.
//
// Until its config comes, init holds the capabilities of its own user namespace only,
// with no id mapped in it: it can act on nothing of the host's beyond what any process
// of host root's without capabilities could, and it runs only our code. It is not
// dumpable (set here, before the unshare), so until systemd's exec its /proc files (fd,
// environ, mem, ns) belong to host root, not to the container's root: stricter, and
// /proc/self still works for init itself.

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INITCLONE_ENV "_BERTH_INIT_CLONE_FD"

// Must match cloneReply in lxd/container/initclone.go.

struct initclone_reply {
	int32_t pid;   // > 0: init's pid in the monitor's pid namespace; -1: failed
	int32_t err;   // errno of the failed step
	char what[40]; // the failed step
};

static void initclone_reply(int sock, int32_t pid, int err, const char *what)
{
	struct initclone_reply r;

	memset(&r, 0, sizeof(r));
	r.pid = pid;
	r.err = err;
	if (what)
		strncpy(r.what, what, sizeof(r.what) - 1);

	while (send(sock, &r, sizeof(r), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void initclone_fail(int sock, const char *what)
{
	initclone_reply(sock, -1, errno, what);
	_exit(1);
}

__attribute__((constructor)) static void initclone(void)
{
	const char *env = getenv(INITCLONE_ENV);
	char *end;
	long fd;
	pid_t pid;

	if (env == NULL || *env == '\0')
		return;

	fd = strtol(env, &end, 10);
	if (*end != '\0' || fd <= 3 || fd > 1024) {
		static const char msg[] = "berth-init: bad " INITCLONE_ENV "\n";

		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(1);

		_exit(1);
	}

	// Not dumpable from here on, whatever fs.suid_dumpable says: until its config, init
	// is host uid 0 in a user namespace such a process (without capabilities) could
	// otherwise ptrace into, and afterwards its threads other than the one that execs
	// still sit in the host's mount namespace. The monitor, host root, keeps its access.
	// systemd's exec makes the process dumpable again, as the container's.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		initclone_fail((int)fd, "prctl(PR_SET_DUMPABLE)");

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID) < 0)
		initclone_fail((int)fd, "unshare");

	// A raw clone without a new stack behaves like fork (as in nsexec.c); CLONE_PARENT
	// makes the monitor the child's parent.
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		initclone_fail((int)fd, "clone");

	if (pid > 0) {
		initclone_reply((int)fd, pid, 0, NULL);
		_exit(0);
	}

	// The child, init: nothing of the monitor's socket, the console as its terminal.
	close((int)fd);
	unsetenv(INITCLONE_ENV);

	if (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0) {
		// Init's sync socket is the one the monitor reads once it has sent the config.
		dprintf(3, "{\"type\":\"error\",\"error\":\"making the console init's controlling terminal: %s\"}\n",
			strerror(errno));
		_exit(1);
	}
}
