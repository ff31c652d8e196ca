/* attack_subvol DIR NAME: creates btrfs subvolume DIR/NAME with BTRFS_IOC_SUBVOL_CREATE
 * (what `btrfs subvolume create` does), printing "created" or the errno. Static: the
 * test image has no btrfs-progs and no compiler. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct vol_args {
	long long fd;
	char name[4088];
};

#define SUBVOL_CREATE _IOW(0x94, 14, struct vol_args)

int main(int argc, char **argv)
{
	struct vol_args a;
	int fd;

	if (argc != 3)
		return 2;
	fd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		printf("open: %s\n", strerror(errno));
		return 1;
	}
	memset(&a, 0, sizeof(a));
	strncpy(a.name, argv[2], sizeof(a.name) - 1);
	if (ioctl(fd, SUBVOL_CREATE, &a) < 0) {
		printf("ioctl: %s\n", strerror(errno));
		return 1;
	}
	printf("created\n");
	return 0;
}
