"""The prepared root filesystem of each flavour: built once with mmdebstrap, cached as a zstd tar, restored per
host."""

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
TAR_FLAGS = ["--numeric-owner", "--xattrs", "--xattrs-include=*"]
# A build's tree (the mysql flavour's is 1.1 GB with its downloaded packages) goes to RAM when it has room:
# dpkg unpacking thousands of files to this machine's disk took twice as long.
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


def build_env(flavour: Flavour, mirror: str, security: str) -> dict[str, str]:
    """What build-rootfs.sh builds, as the RB_* variables it reads."""
    return {
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
    """Path of the flavour's cached rootfs tar, building it first if what builds it changed (slow: 1-10 min)."""
    log = log or Console(stderr=True, highlight=False, markup=False, soft_wrap=True).print
    spec = flavour_named(flavour)
    mirror, security = host_mirrors()
    env = build_env(spec, mirror, security)
    suite_date = release_date(mirror, spec.suite) if spec.rolling else ""
    cache = cache_dir()
    tar = cache / f"rootfs-{spec.name}-{build_inputs_hash(env, mirror, suite_date)}.tar.zst"
    if tar.exists():
        return tar
    with file_lock(cache / f"build-{spec.name}.lock"):
        if not tar.exists():
            _build(spec, tar, env, log)
    return tar


def _build(spec: Flavour, tar: Path, env: dict[str, str], log) -> None:
    started = time.monotonic()
    log(f"[testhost] first build of the {spec.name} test host rootfs -> {tar}")
    work = work_root(1, room_per_host=BUILD_ROOM) / f"build-{spec.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rootfs = work / "rootfs"
    cmd = ["nice", "unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
           "sh", str(FILES / "build-rootfs.sh"), str(rootfs)]
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **env}) as proc:
            for line in proc.stdout:
                log(f"[testhost] {time.monotonic() - started:6.1f}s {line.rstrip()}")
        if proc.returncode != 0:
            raise RuntimeError(f"building the {spec.name} test host rootfs failed (exit {proc.returncode}); "
                               "see the lines above")
        log(f"[testhost] {time.monotonic() - started:6.1f}s packing {tar.name} (zstd)")
        partial = tar.with_name(f"{tar.name}.partial")
        subprocess.run(["nice", "tar", "-C", str(rootfs), "-I", "zstd -T0 -3", *TAR_FLAGS, "-cpf", str(partial),
                        "."], check=True)
        partial.rename(tar)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for stale in tar.parent.glob(f"rootfs-{spec.name}-*.tar.zst"):
        if stale != tar:
            stale.unlink()
    size_mb = tar.stat().st_size / 1e6
    log(f"[testhost] {time.monotonic() - started:6.1f}s built {tar.name} ({size_mb:.0f} MB)")


def restore(tar: Path, dest: Path) -> None:
    """Unpack a fresh copy of the rootfs into dest (which must not exist)."""
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(dest), "-I", "zstd -T0", *TAR_FLAGS, "-xpf", str(tar)], check=True)
