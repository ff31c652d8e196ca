// attack_seccomp: what a hostile root inside a container tries against the
// kernel and the daemon's keyring. Built static on the host by
// attack_seccomp_test.go and pushed into the container (the image has no
// compiler). Each attempt prints one "name=result" line: 0 for success,
// else the errno; "int80" results may be "unavailable" when the kernel has
// no i386 entry point (the process faults).
//
//   attack_seccomp syscalls DIR       kernel attacks; DIR gets a tmpfs
//   attack_seccomp keyring KEY RING   the daemon's key and session keyring
//   attack_seccomp int80              whether int 0x80 works here at all

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/keyctl.h>

static void report(const char *name, long r)
{
	if (r < 0)
		printf("%s=%d\n", name, errno);
	else
		printf("%s=0\n", name);
	fflush(stdout);
}

// int80 makes an i386 system call from this 64-bit program. It runs in a
// child: without ia32 emulation the instruction faults. The child exits
// with the raw result's negated errno (0 on success).
static void int80(const char *name, long nr, long a, long b)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		long r;

		__asm__ volatile("int $0x80"
				 : "=a"(r)
				 : "a"(nr), "b"(a), "c"(b)
				 : "memory", "r8", "r9", "r10", "r11");
		_exit(r < 0 && r > -4096 ? (int)-r : 0);
	}

	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		printf("%s=unavailable\n", name);
	else
		printf("%s=%d\n", name, WEXITSTATUS(st));
	fflush(stdout);
}

static int mount_scratch(const char *dir)
{
	mkdir(dir, 0700);
	if (mount("berth-scratch", dir, "tmpfs", 0, "size=1m") < 0) {
		report("mount_scratch", -1);
		return -1;
	}
	return 0;
}

static int syscalls(const char *dir)
{
	char path[4096], file[4200];
	static char buf[4096];

	mkdir(dir, 0700);

	report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
	report("init_module", syscall(SYS_init_module, buf, sizeof(buf), ""));
	report("finit_module", syscall(SYS_finit_module, -1, "", 0));
	report("delete_module", syscall(SYS_delete_module, "berth_no_such_module", 0));

	// mincore is denied by the test container's security.syscalls.deny.
	void *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char vec;
	report("mincore", syscall(SYS_mincore, page, 4096, &vec));

	// open_by_handle_at on a filesystem the container mounted itself: the
	// kernel lets a user namespace's root decode directory handles there
	// (6.10+); the filter does not.
	snprintf(path, sizeof(path), "%s/handle", dir);
	if (mount_scratch(path) < 0)
		return 1;
	snprintf(file, sizeof(file), "%s/d", path);
	mkdir(file, 0700);
	struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	int mnt_id;
	fh->handle_bytes = MAX_HANDLE_SZ;
	report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, file, fh, &mnt_id, 0));
	int mfd = open(path, O_RDONLY | O_DIRECTORY);
	report("open_by_handle_at", syscall(SYS_open_by_handle_at, mfd, fh, O_RDONLY | O_DIRECTORY));
	close(mfd);
	umount2(path, MNT_DETACH);

	// Forced unmount of our own tmpfs: refused; a plain one: fine.
	snprintf(path, sizeof(path), "%s/force", dir);
	if (mount_scratch(path) < 0)
		return 1;
	report("umount2_force", syscall(SYS_umount2, path, MNT_FORCE));
	report("umount2", syscall(SYS_umount2, path, 0));

	// The same through the 32-bit entry points. x32: a number with
	// __X32_SYSCALL_BIT (getpid); i386: int 0x80 umount2 (52) forced.
	report("x32_getpid", syscall(0x40000000 | SYS_getpid));
	snprintf(path, sizeof(path), "%s/force32", dir);
	if (mount_scratch(path) < 0)
		return 1;
	int80("int80_umount2_force", 52, (long)path, MNT_FORCE);
	umount2(path, MNT_DETACH);
	int80("int80_getpid", 20, 0, 0);

	return 0;
}

static int keyring(long key, long ring)
{
	static char buf[256];

	printf("session=%ld\n", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
	report("read", syscall(SYS_keyctl, KEYCTL_READ, key, buf, sizeof(buf)));
	report("search", syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", "berth-test-secret", 0));
	report("link", syscall(SYS_keyctl, KEYCTL_LINK, key, KEY_SPEC_SESSION_KEYRING));
	report("setperm", syscall(SYS_keyctl, KEYCTL_SETPERM, key, 0x3f3f3f3f));
	report("unlink", syscall(SYS_keyctl, KEYCTL_UNLINK, key, ring));
	report("clear", syscall(SYS_keyctl, KEYCTL_CLEAR, ring));
	report("revoke", syscall(SYS_keyctl, KEYCTL_REVOKE, key));

	// Control: the command's own session keyring works.
	long own = syscall(SYS_add_key, "user", "berth-own", "mine", 4, KEY_SPEC_SESSION_KEYRING);
	report("own_add", own);
	report("own_read", own < 0 ? -1 : syscall(SYS_keyctl, KEYCTL_READ, own, buf, sizeof(buf)));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "syscalls") == 0)
		return syscalls(argv[2]);
	if (argc == 4 && strcmp(argv[1], "keyring") == 0)
		return keyring(atol(argv[2]), atol(argv[3]));
	if (argc == 2 && strcmp(argv[1], "int80") == 0) {
		int80("int80_getpid", 20, 0, 0);
		return 0;
	}
	fprintf(stderr, "usage: attack_seccomp syscalls DIR | keyring KEY RING | int80\n");
	return 2;
}
