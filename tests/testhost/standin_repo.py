"""A STAND-IN for apt.datadoghq.com: a signed local apt repository holding stand-in Agent packages.

Same layout as Datadog's (dist ``stable``, component ``7``, ``binary-amd64``, pool/d/da/...), signed
with a throwaway key generated per run, served over HTTP on a /32 service address that every test
host routes to (never on 0.0.0.0).
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import realsize
from .locking import file_lock
from .processes import start_time
from .settings import SERVICE_NET, STANDIN_SOURCES

DIST, COMPONENT, ARCH = "stable", "7", "amd64"
KEYRING_IN_GUEST = "/usr/share/keyrings/datadog-archive-keyring.gpg"
KEY_FILE_NAME = "DATADOG_APT_KEY_CURRENT.public"
PACKAGES = {  # name: (version, architecture)
    "datadog-agent": ("1:7.99.0-1.standin", ARCH),
    "datadog-signing-keys": ("1:1.4.0-1.standin", "all"),
}


@dataclass
class ThrowawayKey:
    """A gpg signing key that lives only in a temporary GNUPGHOME."""

    home: Path
    fingerprint: str
    armored: str

    def gpg(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["gpg", "--homedir", str(self.home), "--batch", *args],
                              check=True, capture_output=True, **kwargs)

    def export_binary(self, dest: Path) -> None:
        dest.write_bytes(self.gpg("--export", self.fingerprint).stdout)

    def close(self) -> None:
        """Stop the gpg-agent this key's GNUPGHOME started (it is ours)."""
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], capture_output=True)


def throwaway_key(home: Path, name: str) -> ThrowawayKey:
    home.mkdir(mode=0o700, parents=True)
    uid = f"{name} (runbook STAND-IN test key, throwaway) <standin@invalid>"
    run = partial(subprocess.run, check=True, capture_output=True, text=True)
    run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-gen-key", uid, "ed25519", "sign", "2d"])
    colons = run(["gpg", "--homedir", str(home), "--with-colons", "--list-keys"]).stdout
    fingerprint = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
    armored = run(["gpg", "--homedir", str(home), "--armor", "--export", fingerprint]).stdout
    return ThrowawayKey(home, fingerprint, armored)


def _build_deb(name: str, version: str, arch: str, work: Path, pool: Path, extra=None, dest: Path | None = None) -> Path:
    tree = work / "build" / name
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(STANDIN_SOURCES / name, tree, symlinks=True)
    control = tree / "DEBIAN" / "control"
    control.write_text(control.read_text().replace("@VERSION@", version).replace("@ARCH@", arch))
    if extra:
        extra(tree)
    for path in [tree, *tree.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    deb = dest or pool / f"{name}_{version.split(':')[-1]}_{arch}.deb"
    deb.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(tree, ignore_errors=True)
    return deb


def _real_size_agent(work: Path, pool: Path) -> Path:
    """The real-size stand-in Agent (realsize.py): built once into the test-host cache, linked into the pool."""
    version, arch = PACKAGES["datadog-agent"]

    def extras(tree: Path) -> None:
        _agent_extras(tree)
        realsize.generate(tree)

    cached = realsize.cached_deb(lambda dest: _build_deb("datadog-agent", version, arch, work, pool, extras, dest))
    deb = pool / f"datadog-agent_{version.split(':')[-1]}_{arch}.deb"
    deb.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(cached, deb)
    except OSError:  # another filesystem
        shutil.copyfile(cached, deb)
    return deb


def _agent_extras(tree: Path) -> None:
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/datadog-agent").symlink_to("/opt/datadog-agent/bin/agent/agent")


def _signing_keys_extras(key: ThrowawayKey):
    def add(tree: Path) -> None:
        keyring = tree / KEYRING_IN_GUEST.lstrip("/")
        keyring.parent.mkdir(parents=True)
        key.export_binary(keyring)
        keyring.chmod(0o644)
    return add


def build_repo(root: Path, key: ThrowawayKey, work: Path, real_size: bool = False) -> None:
    """Packages, Release, InRelease and Release.gpg under root, and the armored key under root/keys.
    ``real_size``: the Agent package of the real one's size and maintainer-script work (realsize.py)."""
    pool = root / "pool" / "d" / "da"
    if real_size:
        _real_size_agent(work, pool)
    else:
        _build_deb("datadog-agent", *PACKAGES["datadog-agent"], work, pool, _agent_extras)
    _build_deb("datadog-signing-keys", *PACKAGES["datadog-signing-keys"], work, pool, _signing_keys_extras(key))
    dist = root / "dists" / DIST
    index_dir = dist / COMPONENT / f"binary-{ARCH}"
    index_dir.mkdir(parents=True)
    packages = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=root, check=True,
                              capture_output=True, text=True).stdout
    (index_dir / "Packages").write_text(packages)
    subprocess.run(["gzip", "-9k", str(index_dir / "Packages")], check=True)
    options = {"Origin": "Runbook STAND-IN", "Label": "Runbook STAND-IN for apt.datadoghq.com",
               "Suite": DIST, "Codename": DIST, "Components": COMPONENT, "Architectures": ARCH,
               "Description": "STAND-IN Datadog Agent repository for the runbook tests"}
    release = subprocess.run(
        ["apt-ftparchive", *[f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in options.items()],
         "release", "."], cwd=dist, check=True, capture_output=True, text=True).stdout
    (dist / "Release").write_text(release)
    key.gpg("--digest-algo", "SHA512", "-u", key.fingerprint, "--clearsign", "-o", str(dist / "InRelease"),
            str(dist / "Release"))
    key.gpg("--digest-algo", "SHA512", "-u", key.fingerprint, "-abs", "-o", str(dist / "Release.gpg"),
            str(dist / "Release"))
    (root / "keys").mkdir()
    (root / "keys" / KEY_FILE_NAME).write_text(key.armored)


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        self.server.requests.append(self.path)


def _owner_file(addr: str) -> Path:
    return Path(f"/run/runbook-testhost-repo-{addr}.json")


def _allocate_service_addr(workdir: Path) -> str:
    """Add the lowest free 10.200.255.K/32 to lo, first removing addresses left by killed runs."""
    with file_lock():
        taken = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], check=True,
                               capture_output=True, text=True).stdout
        for k in range(1, 255):
            addr = f"{SERVICE_NET}.{k}"
            if f" {addr}/" in taken and not _orphaned(addr):
                continue
            subprocess.run(["ip", "addr", "replace", f"{addr}/32", "dev", "lo"], check=True, capture_output=True)
            owner = os.getpid()
            _owner_file(addr).write_text(json.dumps([owner, start_time(owner), str(workdir)]))
            return addr
    raise RuntimeError(f"no free stand-in service address in {SERVICE_NET}.0/24")


def _orphaned(addr: str) -> bool:
    """True if the run that added addr is gone (an address without an owner file is not ours)."""
    try:
        owner, started, workdir = json.loads(_owner_file(addr).read_text())
    except (OSError, ValueError):
        return False
    if start_time(owner) == started:
        return False
    shutil.rmtree(workdir, ignore_errors=True)
    return True


def _release_service_addr(addr: str) -> None:
    subprocess.run(["ip", "addr", "del", f"{addr}/32", "dev", "lo"], capture_output=True)
    _owner_file(addr).unlink(missing_ok=True)


@dataclass
class StandinAptRepo:
    """A running stand-in repo. url/key_url are as seen from the test hosts."""

    addr: str
    port: int
    keyring_fingerprint: str
    key_armored: str
    workdir: Path
    keyring_file: Path  # the binary keyring (as gpg --export writes it), on this machine
    _server: ThreadingHTTPServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    dist: str = DIST
    component: str = COMPONENT
    keyring_path: str = KEYRING_IN_GUEST
    packages: dict = field(default_factory=lambda: {name: v for name, (v, _) in PACKAGES.items()})

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/"

    @property
    def key_base_url(self) -> str:
        return f"{self.url}keys/"

    @property
    def key_url(self) -> str:
        return f"{self.key_base_url}{KEY_FILE_NAME}"

    @property
    def apt_line(self) -> str:
        return f"deb [signed-by={self.keyring_path}] {self.url} {self.dist} {self.component}"

    @property
    def requests(self) -> list[str]:
        """Paths requested so far (lets tests prove a guest really fetched from here)."""
        return list(self._server.requests)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()
        _release_service_addr(self.addr)
        shutil.rmtree(self.workdir, ignore_errors=True)


def standin_apt_repo(real_size: bool = False) -> StandinAptRepo:
    """Build, sign and serve the stand-in repository; call .stop() when done. ``real_size``: with the Agent
    package of the real one's size, file count and maintainer-script work (realsize.py; bench-vm uses it)."""
    work = Path(tempfile.mkdtemp(prefix="runbook-standin-repo-"))
    try:
        key = throwaway_key(work / "gnupg", "Runbook stand-in apt repo")
        try:
            build_repo(work / "repo", key, work, real_size)
            key.export_binary(work / "keyring.gpg")
        finally:
            key.close()
        addr = _allocate_service_addr(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    server = ThreadingHTTPServer((addr, 0), partial(_Handler, directory=str(work / "repo")))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, name="standin-apt-repo", daemon=True)
    thread.start()
    return StandinAptRepo(addr, server.server_address[1], key.fingerprint, key.armored, work, work / "keyring.gpg",
                          server, thread)
