#!/bin/sh
# Build the prepared root filesystem of one test host flavour into DIR.
# Called by tests/testhost/rootfs.py inside `unshare --mount --pid --fork`, so nothing it mounts
# or starts outlives it. The sha256 of this file (and of rb-init), and the RB_* values, name the cached tree.
# Usage: RB_SUITE=... RB_INCLUDE=a,b RB_INSTALL="c d" RB_PREFETCH="e f" RB_SYSTEMD=yes|no RB_SOURCES="deb ..." \
#        [RB_BASE=TREE] build-rootfs.sh DIR
set -eu
dir=$1
suite=$RB_SUITE

step() { echo "[build-rootfs] $*"; }
in_root() { chroot "$dir" env DEBIAN_FRONTEND=noninteractive "$@"; }

release=$(printf '%s\n' "$RB_SOURCES" | head -n 1)
if [ -n "${RB_BASE:-}" ]; then
    # Another flavour's image of the same suite, and what this one adds installed from the same release (apt
    # given only its first source line; the base kept the lists of every line), as mmdebstrap would have.
    step "copy of $RB_BASE, plus $RB_INCLUDE from: $release"
    cp --archive "$RB_BASE" "$dir"
    printf '%s\n' "$release" >"$dir/run/release.list"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    mount -t proc proc "$dir/proc"
    # shellcheck disable=SC2046
    in_root apt-get -q -y --no-install-recommends -o Dir::Etc::SourceList=/run/release.list \
        -o Dir::Etc::SourceParts=- -o Dpkg::Options::=--force-unsafe-io \
        install $(echo "$RB_INCLUDE" | tr ',' ' ') >"$dir.apt.log" 2>&1 || { tail -30 "$dir.apt.log"; exit 1; }
    umount "$dir/proc"
    rm -f "$dir.apt.log" "$dir/run/release.list" "$dir/sbin/rb-init"
else
    # mmdebstrap installs the packages with one apt run (and no fsync per file). It installs from the release as
    # published (the first source line, the suite's main) and not from its updates: like a Vagrant box, the image
    # is older than the archive, so the recipes' installs upgrade what they depend on (MariaDB's, perl-base).
    # What RB_INSTALL names is installed in the same run: the box had it before the recipes ran.
    include=$RB_INCLUDE${RB_INSTALL:+,$(echo "$RB_INSTALL" | tr ' ' ',')}
    step "mmdebstrap --variant=minbase $suite from: $release (20 s-2 min)"
    echo "$release" | mmdebstrap --variant=minbase --dpkgopt=force-unsafe-io --include="$include" \
      "$suite" "$dir" - >"$dir.mmdebstrap.log" 2>&1 || { tail -30 "$dir.mmdebstrap.log"; exit 1; }
    rm -f "$dir.mmdebstrap.log"

    step "apt sources: $(printf '%s' "$RB_SOURCES" | paste -sd';')"
    printf '%s' "$RB_SOURCES" >"$dir/etc/apt/sources.list"

    step "user vagrant with NOPASSWD sudo (like a Vagrant box)"
    chroot "$dir" useradd --create-home --shell /bin/bash --user-group vagrant
    chroot "$dir" passwd --lock vagrant >/dev/null
    echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$dir/etc/sudoers.d/vagrant"
    chmod 0440 "$dir/etc/sudoers.d/vagrant"
    install -d -m 0700 -o 1000 -g 1000 "$dir/home/vagrant/.ssh"

    step "sshd: ed25519 host key only (generated per host at boot), no DNS lookups"
    rm -f "$dir"/etc/ssh/ssh_host_*
    printf '%s\n' "HostKey /etc/ssh/ssh_host_ed25519_key" "UseDNS no" "PasswordAuthentication no" "LogLevel VERBOSE" \
        >"$dir/etc/ssh/sshd_config.d/runbook-testhost.conf"
fi

step "prefetch (download only) $RB_PREFETCH"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
[ -n "${RB_BASE:-}" ] || in_root apt-get update -q >/dev/null  # mmdebstrap leaves no package lists
# shellcheck disable=SC2086
in_root apt-get install -q -y --download-only $RB_PREFETCH >/dev/null
: >"$dir/etc/resolv.conf"

if [ "$RB_SYSTEMD" = yes ]; then
    step "systemd as PID 1: sshd enabled, units a container does not need masked, machine-id per host"
    chroot "$dir" systemctl enable ssh.service 2>&1
    chroot "$dir" systemctl mask getty@tty1.service console-getty.service systemd-networkd-wait-online.service \
        apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer 2>&1
    : >"$dir/etc/machine-id"
    rm -f "$dir/var/lib/dbus/machine-id"
    # The journal (sshd's log included) goes to the console, i.e. the host's console.log, as sshd -e does
    # without systemd; systemd's own coloured status lines do not.
    install -d "$dir/etc/systemd/journald.conf.d" "$dir/etc/systemd/system.conf.d"
    printf '[Journal]\nForwardToConsole=yes\nMaxLevelConsole=info\n' \
        >"$dir/etc/systemd/journald.conf.d/runbook-testhost.conf"
    printf '[Manager]\nShowStatus=no\n' >"$dir/etc/systemd/system.conf.d/runbook-testhost.conf"
else
    step "init script /sbin/rb-init"
    install -m 0755 "$(dirname "$0")/rb-init" "$dir/sbin/rb-init"
fi
step "done: $(du -sh "$dir" | cut -f1)"
