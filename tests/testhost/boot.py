"""Starting a host's PID 1 (rb-init under unshare, or systemd under systemd-nspawn), finding it, and removing
what a killed systemd-nspawn leaves behind (its cgroups, propagation dir and image lock)."""

import time
from pathlib import Path

from .flavours import Flavour
from .processes import start_time

CGROUP_FS = Path("/sys/fs/cgroup")
NSPAWN_RUN = Path("/run/systemd/nspawn")
# Each cgroup in $RB_CGROUPS gets the launching shell before it becomes systemd-nspawn: with --keep-unit,
# nspawn puts its payload/ and supervisor/ cgroups inside the caller's, so each host needs its own.
JOIN_CGROUPS = 'for g in $RB_CGROUPS; do echo $$ >"$g/cgroup.procs"; done; exec "$@"'


def init_command(flavour: Flavour, name: str, rootfs: Path) -> tuple[list[str], dict[str, str]]:
    """The command that boots the host's init in its namespaces, and the environment it needs (for systemd,
    the host's own cgroups, made here)."""
    if not flavour.systemd:
        return rb_init_command(name, rootfs), {}
    return nspawn_command(name, rootfs), nspawn_env(make_cgroups(name))


def rb_init_command(name: str, rootfs: Path) -> list[str]:
    return ["ip", "netns", "exec", name,
            "unshare", "--mount", "--pid", "--uts", "--ipc", "--fork", "--kill-child",
            "--propagation", "private", "chroot", str(rootfs), "/sbin/rb-init"]


def nspawn_command(name: str, rootfs: Path) -> list[str]:
    # PID 1 of this machine need not be systemd: --register=no --keep-unit keep nspawn off the system bus.
    return ["sh", "-c", JOIN_CGROUPS, "sh",
            "systemd-nspawn", "--quiet", "--boot", f"--directory={rootfs}", f"--machine={name}",
            f"--network-namespace-path=/run/netns/{name}", "--register=no", "--keep-unit", "--settings=no",
            "--link-journal=no", "--resolv-conf=off", "--timezone=off", "--console=read-only"]


def nspawn_env(cgroups: list[Path]) -> dict[str, str]:
    # systemd 258+ (sid has 262) no longer boots on cgroup v1, and this machine may be hybrid: every
    # container gets the unified hierarchy.
    return {"RB_CGROUPS": " ".join(str(group) for group in cgroups), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}


def cgroup_roots() -> list[Path]:
    """The hierarchies nspawn uses: the root on a pure cgroup2 machine, else unified and name=systemd."""
    if (CGROUP_FS / "cgroup.controllers").exists():
        return [CGROUP_FS]
    return [CGROUP_FS / h for h in ("unified", "systemd") if (CGROUP_FS / h / "cgroup.procs").exists()]


def make_cgroups(name: str) -> list[Path]:
    groups = [root / name for root in cgroup_roots()]
    for group in groups:
        group.mkdir(exist_ok=True)
    return groups


def remove_cgroups(name: str) -> None:
    """rmdir the host's cgroups depth-first (a cgroup dir cannot be removed recursively)."""
    for group in (root / name for root in cgroup_roots()):
        if not group.is_dir():
            continue
        subdirs = sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for cgroup in [*subdirs, group]:
            try:
                cgroup.rmdir()
            except OSError:
                pass  # still has processes; the reaper of a later start tries again


def image_lock(rootfs: Path) -> Path | None:
    """The lock nspawn takes for a directory image, named after its device and inode."""
    try:
        st = rootfs.stat()
    except OSError:
        return None
    return NSPAWN_RUN / "locks" / f"inode-{st.st_dev}:{st.st_ino}"


def remove_nspawn_leftovers(name: str, rootfs: Path) -> None:
    """What an nspawn that was SIGKILLed leaves (an nspawn that exits removes them itself); call after its
    processes are gone."""
    propagate = NSPAWN_RUN / "propagate" / name
    if propagate.is_dir():
        for path in sorted(propagate.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
        propagate.rmdir()
    lock = image_lock(rootfs)
    if lock is not None:
        lock.unlink(missing_ok=True)
    remove_cgroups(name)


def namespace_pid1(pid: int, timeout: float = 10) -> int:
    """The PID (on this machine) of the first descendant of pid that is PID 1 of its own PID namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _descendants(pid):
            ns_pids = _ns_pids(child)
            if len(ns_pids) > 1 and ns_pids[-1] == "1":
                return child
        if start_time(pid) is None:
            break
        time.sleep(0.005)
    raise RuntimeError(f"no PID 1 of a new PID namespace under process {pid}")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue  # the process ended while we looked: it has no children any more
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def _ns_pids(pid: int) -> list[str]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    return next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
