#!/bin/sh
# Build the prepared root filesystem of the Debian test host into DIR.
# Called by tests/testhost/rootfs.py inside `unshare --mount --pid --fork`, so nothing it mounts
# or starts outlives it. The sha256 of this file (and of rb-init) names the cached tar.
# Usage: build-rootfs.sh DIR MIRROR SECURITY_MIRROR
set -eu
dir=$1 mirror=$2 security=$3
suite=bookworm
# Installed now: what a fresh Vagrant box has.
include=openssh-server,sudo,procps,ca-certificates,curl,init-system-helpers
# Downloaded only (into /var/cache/apt/archives): what the recipes install, so their apt-get install is
# real but needs no network transfer.
prefetch="mariadb-server default-mysql-server acl gnupg python3-venv python3-pip"

step() { echo "[build-rootfs] $*"; }

step "debootstrap --variant=minbase $suite from $mirror (slow: ~1 min)"
debootstrap --variant=minbase --include="$include" "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 \
  || { tail -30 "$dir.debootstrap.log"; exit 1; }
rm -f "$dir.debootstrap.log"

step "apt sources: $mirror $suite $suite-updates, $security $suite-security"
cat >"$dir/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES

step "user vagrant with NOPASSWD sudo (like a Vagrant box)"
chroot "$dir" useradd --create-home --shell /bin/bash --user-group vagrant
chroot "$dir" passwd --lock vagrant >/dev/null
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$dir/etc/sudoers.d/vagrant"
chmod 0440 "$dir/etc/sudoers.d/vagrant"
install -d -m 0700 -o 1000 -g 1000 "$dir/home/vagrant/.ssh"

step "sshd: ed25519 host key only (generated per host at boot), no DNS lookups"
rm -f "$dir"/etc/ssh/ssh_host_*
cat >"$dir/etc/ssh/sshd_config.d/runbook-testhost.conf" <<SSHD
HostKey /etc/ssh/ssh_host_ed25519_key
UseDNS no
PasswordAuthentication no
SSHD

step "prefetch (download only) $prefetch"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
mount -t proc proc "$dir/proc"
printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
chmod 755 "$dir/usr/sbin/policy-rc.d"
chroot "$dir" apt-get update -q >/dev/null
# shellcheck disable=SC2086
chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -q -y --download-only $prefetch >/dev/null
rm -f "$dir/usr/sbin/policy-rc.d"
umount "$dir/proc"
: >"$dir/etc/resolv.conf"

step "init script /sbin/rb-init"
install -m 0755 "$(dirname "$0")/rb-init" "$dir/sbin/rb-init"
step "done: $(du -sh "$dir" | cut -f1)"
