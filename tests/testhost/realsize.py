"""A STAND-IN `datadog-agent` package of the real one's size, file count and maintainer-script work (bench-vm).

The small stand-in (standin/datadog-agent) is a few kilobytes, so dpkg spends nothing unpacking it and the
benchmark's floor is smaller than a user's. This one adds, at build time, a generated tree with the published
shape of the real Linux amd64 package, and the work its maintainer scripts do:

- Size: 688 MiB installed, 149 MiB as a .deb (Agent 7.68.0; Datadog engineering blog, "How we reduced the size
  of our Agent Go binaries by up to 77%", https://www.datadoghq.com/blog/engineering/agent-go-binaries).
  The five Go binaries at their published 7.68.0 sizes: agent 103 MiB, system-probe 54, security-agent 35,
  process-agent 34, trace-agent 23 MiB (same post).
- Files: about 12,000. Datadog publishes no count; the package's `embedded/.installed_by_pkg.txt`, one line per
  entry under the embedded Python's site-packages alone (omnibus: `find . -path
  './embedded/lib/python*/site-packages/*'`), is "~1MB" (DataDog/datadog-agent pull request 41775): at 80 to
  100 bytes a path, 10,000 to 12,500 entries, before the rest of /opt/datadog-agent.
- /etc/datadog-agent: 11 MB of configuration examples (`du` of an installed Agent in DataDog/documentation pull
  request 22788), one folder per integration, about 200 of them (DataDog/datadog-agent pull request 33594).
- Compression: xz, as Datadog's packages are built (DataDog/datadog-agent-buildimages pull request 514).
  The content is synthetic: pieces of a shared random pool (which xz finds again) and fresh random bytes (which
  it cannot shrink), mixed so that the .deb comes out near 149 MiB.
- Maintainer scripts: the postinst of omnibus/package-scripts/agent-deb (DataDog/datadog-agent): the dd-agent
  user, install_info, `chown -R dd-agent:dd-agent` over /etc/datadog-agent, /var/log/datadog and the whole of
  /opt/datadog-agent, the system-probe and security-agent files given back to root, and the four services
  enabled (datadog-agent, -process, -trace, -security); the preinst and prerm stop the services.

The files are generated, never committed; the built .deb is kept in the test-host cache, named by a digest of
this file and the stand-in sources, so a change to either builds it again.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

from .locking import file_lock
from .settings import STANDIN_SOURCES, cache_dir

MIB = 1024 * 1024
INSTALLED_BYTES = 688 * MIB
DEB_BYTES = 149 * MIB
FILES = 12_000
ETC_BYTES = 11 * MIB
INTEGRATIONS = 200
BINARIES = {  # path under /opt/datadog-agent: MiB (7.68.0)
    "bin/agent/agent.bin": 103,
    "embedded/bin/system-probe": 54,
    "embedded/bin/security-agent": 35,
    "embedded/bin/process-agent": 34,
    "embedded/bin/trace-agent": 23,
}
SERVICES = ["datadog-agent-process", "datadog-agent-trace", "datadog-agent-security"]
# The share of fresh random bytes: what xz cannot shrink. Tuned so the .deb lands near DEB_BYTES.
FRESH = 0.2
POOL_BYTES = 256 * 1024
SEED = 7_68_0

POSTINST_EXTRA = r"""
# --- the real package's postinst work (omnibus/package-scripts/agent-deb/postinst), on the real-size tree ---
if [ ! -f /etc/datadog-agent/install_info ]; then
    printf -- '---\ninstall_method:\n  tool: dpkg\n  tool_version: dpkg-%s\n  installer_version: deb_package\n' \
        "$(dpkg-query --showformat='${Version}' --show dpkg | cut -d . -f 1-3)" > /etc/datadog-agent/install_info
fi
chown -R dd-agent:dd-agent /etc/datadog-agent
chown -R dd-agent:dd-agent /var/log/datadog
chown -R dd-agent:dd-agent /opt/datadog-agent
chmod 0440 /etc/datadog-agent/system-probe.yaml.example || true
chmod 0440 /etc/datadog-agent/security-agent.yaml.example || true
chown root:root /opt/datadog-agent/embedded/bin/system-probe /opt/datadog-agent/embedded/bin/security-agent
chown -R root:root /opt/datadog-agent/embedded/share/system-probe/ebpf
for s in SERVICES; do
    if [ -d /run/systemd/system ]; then
        systemctl enable --quiet "$s" 2>/dev/null || echo "[ WARNING ] Cannot enable $s with systemctl"
    else
        update-rc.d "$s" defaults >/dev/null || echo "[ WARNING ] Cannot enable $s with update-rc.d"
    fi
done
""".replace("SERVICES", " ".join(SERVICES))

EXTRA_INIT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs $syslog
# Required-Stop:     $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: STAND-IN {name} (runbook benchmark; runs nothing)
### END INIT INFO
case "$1" in
    start|stop|restart|force-reload) exit 0 ;;
    status) exit 3 ;;
    *) echo "Usage: $0 {{start|stop|restart|status}}" >&2; exit 2 ;;
esac
"""


def _sizes(rng: random.Random, count: int, total: int) -> list[int]:
    """count file sizes adding up to total: log-normal, as a tree of Python modules and libraries is."""
    raw = [rng.lognormvariate(8.3, 1.6) for _ in range(count)]
    scale = total / sum(raw)
    sizes = [max(1, int(size * scale)) for size in raw]
    sizes[0] += total - sum(sizes)
    return sizes


class _Content:
    """Synthetic bytes: pool pieces (xz finds them again) and fresh random bytes (FRESH of them)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.pool = rng.randbytes(POOL_BYTES)

    def write(self, path: Path, size: int) -> None:
        with open(path, "wb") as out:
            left = size
            while left > 0:
                piece = min(left, self.rng.randint(2048, 65536))
                fresh = int(piece * FRESH)
                start = self.rng.randrange(0, POOL_BYTES - (piece - fresh))
                out.write(self.pool[start:start + piece - fresh])
                out.write(self.rng.randbytes(fresh))
                left -= piece


def generate(tree: Path) -> None:
    """Add the real-size files and maintainer-script work to a copy of the small stand-in's tree."""
    rng = random.Random(SEED)
    content = _Content(rng)
    opt = tree / "opt/datadog-agent"
    for relative, mib in BINARIES.items():
        path = opt / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        content.write(path, mib * MIB)
        path.chmod(0o755)
    ebpf = opt / "embedded/share/system-probe/ebpf"
    ebpf.mkdir(parents=True)
    etc = tree / "etc/datadog-agent"
    for name in ("system-probe.yaml.example", "security-agent.yaml.example"):
        content.write(etc / name, 8 * 1024)
    # /etc/datadog-agent/conf.d: one folder per integration (the small stand-in's mysql.d stays as it is).
    per_integration = _sizes(rng, INTEGRATIONS, ETC_BYTES)
    for index, size in enumerate(per_integration):
        folder = etc / "conf.d" / f"standin_integration_{index:03d}.d"
        folder.mkdir(parents=True)
        content.write(folder / "conf.yaml.example", size)
    # The rest: the embedded Python, its site-packages and libraries, in folders of a few dozen files.
    already = sum(BINARIES.values()) * MIB + ETC_BYTES + 2 * 8 * 1024
    rest = FILES - len(BINARIES) - INTEGRATIONS - 2
    for index, size in enumerate(_sizes(rng, rest, INSTALLED_BYTES - already)):
        folder = opt / "embedded/lib/python3.12/site-packages" / f"standin_{index // 40:03d}"
        if index % 500 == 499:
            folder = ebpf
        folder.mkdir(parents=True, exist_ok=True)
        content.write(folder / f"module_{index:05d}.py", size)
    init_d = tree / "etc/init.d"
    for name in SERVICES:
        script = init_d / name
        script.write_text(EXTRA_INIT.format(name=name))
        script.chmod(0o755)
    conffiles = tree / "DEBIAN/conffiles"
    conffiles.write_text(conffiles.read_text() + "".join(f"/etc/init.d/{name}\n" for name in SERVICES))
    postinst = tree / "DEBIAN/postinst"
    text = postinst.read_text()
    head, tail = text.rsplit("exit 0", 1)
    postinst.write_text(head + POSTINST_EXTRA + "exit 0" + tail)
    for script in ("prerm",):  # stop the extra services too, as the real prerm does
        path = tree / "DEBIAN" / script
        text = path.read_text()
        head, tail = text.rsplit("exit 0", 1)
        path.write_text(head + "".join(f"invoke-rc.d {name} stop >/dev/null 2>&1 || true\n" for name in SERVICES)
                        + "exit 0" + tail)


def digest() -> str:
    """What the built package depends on: this file and the small stand-in's sources."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted((STANDIN_SOURCES / "datadog-agent").rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(STANDIN_SOURCES)).encode() + path.read_bytes())
    return h.hexdigest()[:12]


def cached_deb(build) -> Path:
    """The real-size .deb from the cache, built with ``build(dest)`` first when missing."""
    dest = cache_dir() / f"standin-datadog-agent-realsize-{digest()}.deb"
    with file_lock(cache_dir() / "realsize.lock"):
        if not dest.exists():
            for old in cache_dir().glob("standin-datadog-agent-realsize-*.deb"):
                old.unlink()
            partial = dest.with_suffix(".partial")
            build(partial)
            os.replace(partial, dest)
    return dest


def summary(deb: Path) -> dict:
    """What the built package holds, measured from its listing: installed bytes, files, .deb bytes."""
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True).stdout
    entries = [line.split() for line in listing.splitlines()]
    files = [entry for entry in entries if not entry[0].startswith("d")]
    return {"installed_bytes": sum(int(entry[2]) for entry in files), "files": len(files),
            "deb_bytes": deb.stat().st_size}
