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

// Every signal, glibc's own (32, 33) included: sigfillset leaves those out, and
// pthread_sigmask would not block them anyway, so the mask is set with the system call.
static const unsigned long long all_signals = ~0ULL;

// The holder runs on its own small stack but with the calling thread's TLS, in memory
// the Go runtime owns: it calls nothing of libc that could write there (errno included),
// only raw system calls that cannot fail. Every signal is blocked (the mask it inherits),
// so no handler of the runtime or of glibc ever runs in it, ppoll returns for none, and
// SIGKILL, which cannot be blocked, is its only way out. It dies with the thread that
// made it (PR_SET_PDEATHSIG), and leaves at once if its parent (arg: the daemon's pid)
// died before that was set.
static int holder(void *arg)
{
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (syscall(SYS_getppid) != (long)arg)
		syscall(SYS_exit, 0);

	for (;;)
		syscall(SYS_ppoll, NULL, 0, NULL, NULL, 0);

	return 0;
}

int berth_userns_holder(void **stack)
{
	unsigned long long old;
	int pid, err;
	char *s = malloc(BERTH_USERNS_HOLDER_STACK);

	*stack = s;
	if (s == NULL)
		return -ENOMEM;

	// The child starts with the mask in force at the clone; the thread gets its own
	// back right after (for those microseconds a setxid broadcast waits for it).
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all_signals, &old, sizeof(old));
	// No exit signal: the runtime hears no SIGCHLD, and the caller reaps with __WALL.
	pid = clone(holder, s + BERTH_USERNS_HOLDER_STACK, CLONE_NEWUSER | CLONE_VM,
		    (void *)(long)getpid());
	err = errno;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(old));

	if (pid < 0) {
		free(s);
		*stack = NULL;
		return -err;
	}

	return pid;
}
