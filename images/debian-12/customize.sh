#!/bin/sh
# Turns a fresh debootstrap tree into a Berth container image. shared/imagebuild runs it
# inside the tree with chroot (in a private mount namespace), fed on stdin.
set -eu

# Guard: this script empties /dev and the apt lists; never let it run on a host.
if [ "${BERTH_IMAGE_CHROOT:-}" != 1 ]; then
	echo "customize.sh: refusing to run outside Berth's image build chroot" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# No password logins: users get in with `lxc exec`.
passwd -l root >/dev/null

# Network: systemd-networkd with DHCP on eth0 (the NIC Berth gives each container).
mkdir -p /etc/systemd/network
cat >/etc/systemd/network/eth0.network <<'UNIT'
[Match]
Name=eth0

[Network]
DHCP=yes
UNIT
systemctl enable systemd-networkd.service >/dev/null 2>&1

# Units that cannot work in an unprivileged container (no kernel debug/config/tracefs, no
# fuse control, no audit, read-only /sys for udev). Masking stops noisy failures at boot.
systemctl mask \
	sys-kernel-debug.mount \
	sys-kernel-tracing.mount \
	sys-kernel-config.mount \
	sys-fs-fuse-connections.mount \
	systemd-journald-audit.socket \
	systemd-udevd.service \
	systemd-udevd-control.socket \
	systemd-udevd-kernel.socket \
	systemd-udev-trigger.service >/dev/null 2>&1

# Generators and a unit with nothing to do in a container, masked: each generator is an
# exec on every boot (~10 ms of CPU each on a small VM; on 10 parallel boots the twelve
# generators were 15% of all CPU). Block devices (cryptsetup, integritysetup,
# veritysetup, gpt-auto), hibernation, and settings read from the kernel command line,
# which in a container is init's argv, set by Berth (debug, run, network-generator).
# fstab, getty, rc-local, sysv and system-update stay: users' files drive them. To undo a
# mask inside a container: rm the link (or systemctl unmask the unit) and reboot.
mkdir -p /etc/systemd/system-generators
for g in cryptsetup integritysetup veritysetup gpt-auto hibernate-resume debug run; do
	ln -sf /dev/null "/etc/systemd/system-generators/systemd-$g-generator"
done
systemctl mask systemd-network-generator.service >/dev/null 2>&1

# A container has no VTs: keep only the console getty.
systemctl disable getty@tty1.service >/dev/null 2>&1
systemctl enable console-getty.service >/dev/null 2>&1

# An empty machine-id makes systemd generate one per container at first boot.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id

# Placeholders, rewritten from templates/ when an instance is created. debootstrap copies
# these from the build host (with its modes): replace them outright.
rm -f /etc/hostname /etc/hosts /etc/resolv.conf
echo debian >/etc/hostname
printf '127.0.0.1\tlocalhost\n' >/etc/hosts
# Do not ship the build host's resolver configuration.
: >/etc/resolv.conf
chmod 0644 /etc/hostname /etc/hosts /etc/resolv.conf

# Drop the download caches and logs.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
find /var/log -type f -exec truncate -s 0 {} +
rm -f /var/cache/ldconfig/aux-cache

# Berth provides /dev: drop what debootstrap created. Last, since any ">/dev/null" from here
# on would recreate it as a regular file.
find /dev -mindepth 1 -delete
