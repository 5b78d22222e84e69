"""The prepared root filesystem: built once with debootstrap, cached as a zstd tar, restored per host."""

import glob
import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from rich.console import Console

from .locking import file_lock
from .settings import FILES, SUITE, cache_dir

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
TAR_FLAGS = ["--numeric-owner", "--xattrs", "--xattrs-include=*"]


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
    """The Debian mirror and security mirror this machine's apt uses (for the guest's bookworm)."""
    mirror, security = DEFAULT_MIRROR, DEFAULT_SECURITY
    for uri, suites in reversed(_apt_sources()):
        if f"{SUITE}-security" in suites:
            security = uri
        elif SUITE in suites:
            mirror = uri
    return mirror.rstrip("/"), security.rstrip("/")


def build_inputs_hash(mirror: str, security: str) -> str:
    digest = hashlib.sha256()
    for name in ("build-rootfs.sh", "rb-init"):
        digest.update((FILES / name).read_bytes())
    digest.update(f"{mirror}\n{security}\n".encode())
    return digest.hexdigest()[:12]


def cached_rootfs(log=None) -> Path:
    """Path of the cached rootfs tar, building it first if the build recipe changed (slow: ~2 min)."""
    log = log or Console(stderr=True, highlight=False, markup=False, soft_wrap=True).print
    mirror, security = host_mirrors()
    cache = cache_dir()
    tar = cache / f"rootfs-{SUITE}-{build_inputs_hash(mirror, security)}.tar.zst"
    if tar.exists():
        return tar
    with file_lock(cache / "build.lock"):
        if not tar.exists():
            _build(tar, mirror, security, log)
    return tar


def _build(tar: Path, mirror: str, security: str, log) -> None:
    started = time.monotonic()
    log(f"[testhost] first build of the test host rootfs -> {tar}")
    work = tar.with_suffix(".build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    rootfs = work / "rootfs"
    cmd = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
           "sh", str(FILES / "build-rootfs.sh"), str(rootfs), mirror, security]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            log(f"[testhost] {time.monotonic() - started:6.1f}s {line.rstrip()}")
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"building the test host rootfs failed (exit {proc.returncode}); see the lines above")
    log(f"[testhost] {time.monotonic() - started:6.1f}s packing {tar.name} (zstd)")
    partial = work / "rootfs.tar.zst"
    subprocess.run(["tar", "-C", str(rootfs), "-I", "zstd -T0 -3", *TAR_FLAGS, "-cpf", str(partial), "."],
                   check=True)
    partial.rename(tar)
    shutil.rmtree(work, ignore_errors=True)
    for stale in tar.parent.glob(f"rootfs-{SUITE}-*.tar.zst"):
        if stale != tar:
            stale.unlink()
    size_mb = tar.stat().st_size / 1e6
    log(f"[testhost] {time.monotonic() - started:6.1f}s built {tar.name} ({size_mb:.0f} MB)")


def restore(tar: Path, dest: Path) -> None:
    """Unpack a fresh copy of the rootfs into dest (which must not exist)."""
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(dest), "-I", "zstd -T0", *TAR_FLAGS, "-xpf", str(tar)], check=True)
