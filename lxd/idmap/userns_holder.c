// The holder of a new user namespace: a process that shares the daemon's memory
// (CLONE_VM: no page tables are copied, nothing is exec'd) and only waits to be killed,
// so that its caller can write the namespace's maps and open /proc/<pid>/ns/user.
// lxd/idmap/userns_holder.go says why and drives it.

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "userns_holder.h"

// The holder runs on its own small stack but with the calling thread's TLS, in memory
// the Go runtime owns: it calls nothing of libc that could write there (errno included),
// only raw system calls that do not fail. Every signal is blocked (the mask it inherits),
// so pause returns for none and SIGKILL, which cannot be blocked, is its only way out.
// It dies with the thread that made it too (PR_SET_PDEATHSIG), should the daemon die
// before killing it.
static int holder(void *arg)
{
	(void)arg;
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	for (;;)
		syscall(SYS_pause);

	return 0;
}

int berth_userns_holder(void **stack)
{
	sigset_t all, old;
	int pid, err;
	char *s = malloc(BERTH_USERNS_HOLDER_STACK);

	*stack = s;
	if (s == NULL)
		return -ENOMEM;

	// The child starts with the mask in force at the clone: all blocked, so that no
	// handler of the Go runtime ever runs in it. The thread's own mask comes back after.
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	// No exit signal: the runtime hears no SIGCHLD, and the caller reaps with __WALL.
	pid = clone(holder, s + BERTH_USERNS_HOLDER_STACK, CLONE_NEWUSER | CLONE_VM, NULL);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (pid < 0) {
		free(s);
		*stack = NULL;
		return -err;
	}

	return pid;
}
