"""tinyproxy on the host end of a host's veth: the guest's only way to the Debian mirror."""

import socket
import subprocess
import time
from pathlib import Path

from .settings import PROXY_PORT

CONFIG = """\
# Generated for one test host: listens only on its veth's host end.
User nobody
Group nogroup
Port {port}
Listen {listen}
Allow {allow}
Timeout 600
MaxClients 50
ConnectPort 443
LogLevel Info
DisableViaHeader Yes
"""


def start_proxy(listen: str, allow_net: str, workdir: Path) -> subprocess.Popen:
    conf = workdir / "tinyproxy.conf"
    conf.write_text(CONFIG.format(port=PROXY_PORT, listen=listen, allow=allow_net))
    log = open(workdir / "tinyproxy.log", "ab")
    proc = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    wait_for_port(listen, PROXY_PORT, proc, "tinyproxy")
    return proc


def wait_for_port(addr: str, port: int, proc: subprocess.Popen, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {addr}:{port}")
        try:
            with socket.create_connection((addr, port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {addr}:{port} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """End a process this package started, by its PID."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
