#!/bin/bash
# Real systemd as PID 1 inside a separate rootfs, for hostmedic's tests.
# Driven by tests/support/src/systemd.rs, which caches the built rootfs as a
# tarball and records every PID this script starts.
#
#   systemd-rootfs.sh build <dir>        debootstrap a rootfs into <dir> (must not exist)
#   ROOT=<dir> systemd-rootfs.sh boot    boot <dir>/rootfs; prints the host PID of its systemd
#   ROOT=<dir> systemd-rootfs.sh halt    poweroff by signal, then SIGKILL; removes the cgroup
#
# boot runs systemd in its own pid/mount/uts/ipc/net/cgroup namespaces,
# chrooted into the rootfs; its system bus is reachable from outside at
# unix:path=/proc/<pid>/root/run/dbus/system_bus_socket.
# Never boot systemd with this machine's own root: its tmpfiles step wipes /tmp.
set -eu

# Units that would touch the host kernel or are noise in a container.
MASKED="systemd-remount-fs.service systemd-firstboot.service systemd-modules-load.service kmod-static-nodes.service
  systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount
  dev-hugepages.mount systemd-pstore.service getty.target console-getty.service apt-daily.timer
  apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer e2scrub_reap.service
  systemd-hwdb-update.service man-db.timer systemd-journald-audit.socket"

case ${1:-} in
build)
  R=${2:?usage: build <dir>}
  [ -e "$R" ] && { echo "build: $R exists" >&2; exit 2; }
  # The Debian archive this machine's apt already uses (the one whose path ends in /debian).
  mirror=${HOSTMEDIC_TEST_MIRROR:-$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -1 | tr -d ' ')}
  mirror=${mirror:-http://deb.debian.org/debian}
  # ca-certificates: the Debian package of hostmedic depends on it (tests/e2e/deploy_unit.rs).
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,ca-certificates \
    bookworm "$R" "$mirror"
  S=$R/etc/systemd/system; mkdir -p $S/multi-user.target.wants
  for u in $MASKED; do ln -sf /dev/null $S/$u; done
  # An unprivileged user for user-manager tests (lingering is enabled per test).
  chroot "$R" /usr/sbin/useradd --uid 1000 --create-home --shell /bin/sh medic
  # Keep the image small: docs, man pages and the apt cache are not needed.
  rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/var/lib/apt/lists/*
  ;;
boot)
  ROOT=${ROOT:?set ROOT}; R=$ROOT/rootfs; CG=/sys/fs/cgroup/unified/hostmedic-test-$$
  [ -d /sys/fs/cgroup/unified ] || CG=/sys/fs/cgroup/hostmedic-test-$$
  mkdir -p $CG; echo $CG > $ROOT/cgroup
  ( echo $BASHPID > $CG/cgroup.procs
    exec unshare --pid --fork --mount --uts --ipc --net --cgroup --propagation private bash "$0" _init ) > $ROOT/console.log 2>&1 &
  U=$!; C=
  for i in $(seq 100); do C=$(pgrep -P $U || true); [ -n "$C" ] && break; sleep 0.05; done
  [ -n "$C" ] || { echo "boot: no child of unshare $U" >&2; kill -9 $U 2>/dev/null; exit 1; }
  echo $U > $ROOT/unshare.pid; echo $C > $ROOT/systemd.pid; echo $C ;;
_init)  # runs as PID 1 of the new namespaces
  R=$ROOT/rootfs
  mount --make-rprivate /; mount --bind $R $R
  mount -t proc -o nosuid,nodev,noexec proc $R/proc
  for p in sys sysrq-trigger; do [ -e $R/proc/$p ] || continue; mount --bind $R/proc/$p $R/proc/$p; mount -o remount,bind,ro $R/proc/$p; done
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs $R/sys
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 $R/sys/fs/cgroup
  mount -t tmpfs -o mode=755,nosuid,size=16m tmpfs $R/dev
  for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do IFS=: read name ma mi <<<"$n"; mknod -m 666 $R/dev/$name c $ma $mi; done
  mkdir -p $R/dev/pts $R/dev/shm; ln -s /proc/self/fd $R/dev/fd; ln -s pts/ptmx $R/dev/ptmx
  mount -t tmpfs -o mode=755,nosuid,nodev,size=64m tmpfs $R/run
  exec chroot $R /usr/bin/env -i container=hostmedic-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --log-target=console --show-status=no ;;
halt)
  ROOT=${ROOT:?set ROOT}
  P=$(cat $ROOT/systemd.pid); U=$(cat $ROOT/unshare.pid); CG=$(cat $ROOT/cgroup)
  kill -s SIGRTMIN+4 $P 2>/dev/null || true
  for i in $(seq 100); do kill -0 $P 2>/dev/null || break; sleep 0.1; done
  kill -0 $P 2>/dev/null && kill -9 $P || true
  for i in $(seq 30); do kill -0 $U 2>/dev/null || break; sleep 0.1; done
  kill -0 $U 2>/dev/null && kill -9 $U || true
  find $CG -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null; rmdir $CG 2>/dev/null || true ;;
*) echo "usage: $0 build <dir> | ROOT=dir $0 boot|halt" >&2; exit 2 ;;
esac
