// nsexec: join a running container's namespaces before the Go runtime starts.
//
// The kernel refuses setns into a user or mount namespace from a
// multi-threaded process, and a Go program has threads before main. This
// constructor runs first, while the process is still single-threaded, and
// does only what must happen there (style.md §4.3):
//
//  1. act only if $_BERTH_NSEXEC_FD names an inherited fd (a SOCK_SEQPACKET
//     socket to the daemon); otherwise return at once;
//  2. read one fixed header: a pidfd of the container's init and the
//     namespaces to join;
//  3. mark the process non-dumpable, so nothing in the container can ptrace
//     it or open its /proc files while it still holds host state;
//  4. setns(pidfd, flags): the kernel joins all of them at once, user
//     namespace first, so the others are checked against the capabilities
//     we gain in the container's user namespace; joining the mount
//     namespace also moves root and cwd to the container's root;
//  5. one-shot mode: fork with CLONE_PARENT so the pid namespace applies and
//     the child is the daemon's child (the daemon waits for it through a
//     pidfd); report the child's pid and exit. The child returns here and
//     the Go runtime starts inside the container: helper.go does the rest.
//     Server mode (the pid namespace is not in the flags): return at once;
//     this process becomes the exec server (server_main.go), which joins the
//     pid namespace on one thread of its own, as a Go runtime must.
//
// Errors are reported on the socket as a reply with a negative pid.

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NSEXEC_ENV "_BERTH_NSEXEC_FD"
#define NSEXEC_MAGIC 0x42525448u /* "BRTH" */
#define NSEXEC_VERSION 2u
#define NSEXEC_MODE_SERVE 1u

// Must match header and reply in nsexec.go.
struct nsexec_header {
	uint32_t magic;
	uint32_t version;
	int32_t pidfd;
	uint32_t nsflags;
	uint32_t mode;
};

struct nsexec_reply {
	int32_t pid;   // the child's pid in the daemon's pid namespace, or -1
	int32_t err;   // errno of the failed step
	char what[40]; // the failed step
};

static void reply(int sock, int32_t pid, int err, const char *what)
{
	struct nsexec_reply r;

	memset(&r, 0, sizeof(r));
	r.pid = pid;
	r.err = err;
	if (what)
		strncpy(r.what, what, sizeof(r.what) - 1);

	while (send(sock, &r, sizeof(r), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void fail(int sock, const char *what)
{
	reply(sock, -1, errno, what);
	_exit(1);
}

__attribute__((constructor)) static void nsexec(void)
{
	const char *env = getenv(NSEXEC_ENV);
	struct nsexec_header h;
	char *end;
	long fd;
	ssize_t n;
	pid_t pid;

	if (env == NULL || *env == '\0')
		return;

	fd = strtol(env, &end, 10);
	if (*end != '\0' || fd < 3 || fd > 1024)
		_exit(1);

	do
		n = recv((int)fd, &h, sizeof(h), 0);
	while (n < 0 && errno == EINTR);

	if (n != (ssize_t)sizeof(h) || h.magic != NSEXEC_MAGIC || h.version != NSEXEC_VERSION) {
		errno = EPROTO;
		fail((int)fd, "reading header");
	}

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail((int)fd, "prctl(PR_SET_DUMPABLE)");

	if (setns(h.pidfd, (int)h.nsflags) < 0)
		fail((int)fd, "setns");

	// The server keeps the pidfd: it joins the pid namespace and watches
	// init through it.
	if (h.mode == NSEXEC_MODE_SERVE)
		return;

	close(h.pidfd);

	// A raw clone without a new stack behaves like fork; CLONE_PARENT makes
	// the daemon the child's parent.
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		fail((int)fd, "clone");

	if (pid == 0)
		return; // the child: on to the Go runtime, inside the container

	reply((int)fd, pid, 0, NULL);
	_exit(0);
}
