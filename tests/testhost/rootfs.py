"""The prepared root filesystem of each flavour: built once with mmdebstrap and cached as a directory tree,
which every host boots as a copy-on-write overlay (its writes go to the host's own upper dir)."""

import functools
import glob
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from rich.console import Console

from .flavours import DEFAULT, Flavour, flavour_named
from .locking import file_lock
from .settings import FILES, HOST_SUITE, cache_dir, work_root

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
# A build's tree (the mysql flavour's is 1.2 GB with its downloaded packages) goes to RAM when it has room:
# dpkg's install took 29 s on this machine's disk, 18 s in RAM.
BUILD_ROOM = 2e9


def _apt_sources() -> list[tuple[str, list[str]]]:
    """(URI, suites) pairs of the host's apt sources, both one-line and deb822 formats."""
    found: list[tuple[str, list[str]]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list") + glob.glob("/etc/apt/sources.list.d/*")):
        text = Path(path).read_text(errors="replace")
        if path.endswith(".sources"):
            for stanza in text.split("\n\n"):
                fields = dict(
                    line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
                )
                fields = {k.strip().lower(): v.split() for k, v in fields.items()}
                for uri in fields.get("uris", []):
                    found.append((uri, fields.get("suites", [])))
        else:
            for line in text.splitlines():
                words = [w for w in line.split("#")[0].split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb":
                    found.append((words[1], [words[2]]))
    return found


def host_mirrors() -> tuple[str, str]:
    """The Debian mirror and security mirror this machine's apt uses (for the guest's bookworm; sid comes
    from the same mirror)."""
    mirror, security = DEFAULT_MIRROR, DEFAULT_SECURITY
    for uri, suites in reversed(_apt_sources()):
        if f"{HOST_SUITE}-security" in suites:
            security = uri
        elif HOST_SUITE in suites:
            mirror = uri
    return mirror.rstrip("/"), security.rstrip("/")


@functools.lru_cache
def release_date(mirror: str, suite: str) -> str:
    """The Date of the suite's Release file on the mirror (its first 2 KB), once per process so that a
    session does not rebuild halfway when the mirror updates."""
    request = urllib.request.Request(f"{mirror}/dists/{suite}/Release", headers={"Range": "bytes=0-2047"})
    with urllib.request.urlopen(request, timeout=30) as response:
        head = response.read(2048).decode(errors="replace")
    for line in head.splitlines():
        if line.startswith("Date:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(f"no Date in {mirror}/dists/{suite}/Release")


def build_env(flavour: Flavour, mirror: str, security: str, base: Path | None = None) -> dict[str, str]:
    """What build-rootfs.sh builds, as the RB_* variables it reads (``base``: the base flavour's tree; its name
    carries the base's own hash, so a rebuilt base rebuilds what is built on it)."""
    return {
        "RB_BASE": str(base) if base else "",
        "RB_SUITE": flavour.suite,
        "RB_INCLUDE": ",".join(flavour.packages),
        "RB_INSTALL": " ".join(flavour.install),
        "RB_PREFETCH": " ".join(flavour.prefetch),
        "RB_SYSTEMD": "yes" if flavour.systemd else "no",
        "RB_SOURCES": flavour.apt_sources(mirror, security),
    }


def build_inputs_hash(env: dict[str, str], mirror: str, suite_date: str = "") -> str:
    digest = hashlib.sha256()
    for name in ("build-rootfs.sh", "rb-init"):
        digest.update((FILES / name).read_bytes())
    digest.update(json.dumps({"env": env, "mirror": mirror, "suite_date": suite_date}, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def cached_rootfs(flavour: str = DEFAULT, log=None) -> Path:
    """The flavour's prepared rootfs tree (read only: hosts mount it as the lower layer of an overlay), building
    it first if what builds it changed (slow: 20 s-2 min)."""
    log = log or Console(stderr=True, highlight=False, markup=False, soft_wrap=True).print
    spec = flavour_named(flavour)
    mirror, security = host_mirrors()
    base = cached_rootfs(spec.base, log) if spec.base else None
    env = build_env(spec, mirror, security, base)
    suite_date = release_date(mirror, spec.suite) if spec.rolling else ""
    cache = cache_dir()
    tree = cache / f"rootfs-{spec.name}-{build_inputs_hash(env, mirror, suite_date)}"
    if tree.is_dir():
        return tree
    with file_lock(cache / f"build-{spec.name}.lock"):
        if not tree.is_dir():
            _build(spec, tree, env, log)
    return tree


def _build(spec: Flavour, tree: Path, env: dict[str, str], log) -> None:
    started = time.monotonic()
    log(f"[testhost] first build of the {spec.name} test host rootfs -> {tree}")
    work = work_root(1, room_per_host=BUILD_ROOM) / f"build-{spec.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rootfs = work / "rootfs"
    cmd = ["nice", "unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
           "sh", str(FILES / "build-rootfs.sh"), str(rootfs)]
    partial = tree.with_name(f"{tree.name}.partial")
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **env}) as proc:
            for line in proc.stdout:
                log(f"[testhost] {time.monotonic() - started:6.1f}s {line.rstrip()}")
        if proc.returncode != 0:
            raise RuntimeError(f"building the {spec.name} test host rootfs failed (exit {proc.returncode}); "
                               "see the lines above")
        log(f"[testhost] {time.monotonic() - started:6.1f}s keeping it as {tree.name}")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            rootfs.rename(partial)
        except OSError:  # built in RAM: copied to the cache's disk, with owners, modes, links and xattrs
            subprocess.run(["cp", "--archive", str(rootfs), str(partial)], check=True)
        partial.rename(tree)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
    for stale in tree.parent.glob(f"rootfs-{spec.name}-*"):
        if stale != tree and not _mounted_as_lower(stale):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    log(f"[testhost] {time.monotonic() - started:6.1f}s built {tree.name}")


def _mounted_as_lower(tree: Path) -> bool:
    """Whether a running host (of another test run) still boots from this tree."""
    return f"lowerdir={tree}," in Path("/proc/self/mountinfo").read_text()


def mount_copy(tree: Path, workdir: Path) -> Path:
    """A fresh copy of the tree at workdir/rootfs, copy-on-write: an overlay whose changes go to
    workdir/upper, so booting a host copies nothing and the tree is never written."""
    rootfs, upper, scratch = workdir / "rootfs", workdir / "upper", workdir / "overlay-work"
    for folder in (rootfs, upper, scratch):
        folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={tree},upperdir={upper},workdir={scratch}", str(rootfs)], check=True)
    return rootfs


def unmount_copy(workdir: Path) -> None:
    """Unmount a host's overlay, if it is mounted (lazily if something still holds it)."""
    rootfs = workdir / "rootfs"
    if os.path.ismount(rootfs) and subprocess.run(["umount", str(rootfs)], capture_output=True).returncode:
        subprocess.run(["umount", "--lazy", str(rootfs)], check=True)
