"""FakeDatadog: a stateful stand-in for the parts of the Datadog API the runbook uses, on 127.0.0.1.

It answers the way the real API's recorded traffic does (tests/fakedd/rules.py lists each copied
behaviour; dashboards.py, monitors.py, downtimes.py and notebooks.py hold the rules of each object): server fields
and defaults added, numbers as floats, types normalized, whitespace trimmed, lists paged as the real
endpoints page them. It records every request so tests can count writes, and injects faults on
demand: 429 with X-RateLimit-* headers, 5xx before or after the write is done, 403, slow answers (or
answers held until the test releases them, `Fault(delay=..., hold=event)`).

Another client's write can be made to land between a run's list and its create: `meanwhile(method,
path, act)` runs `act(fake, body)` once, just before the next matching request is carried out, e.g. to
create the same object the way a run on another machine would (tests/test_api_concurrency.py).
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.fakedd import dashboards, downtimes, monitors, notebooks, snapshots, telemetry
from tests.fakedd.common import ApiError
from tests.fakedd.rules import copies

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_KEY_ONLY = {"/api/v1/events"}  # posting an event takes the API key alone (the client sends no app key)
NOT_WRITES = {"/api/v1/monitor/validate", "/api/v2/logs/events/search"}  # POST, but changes nothing


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: object
    status: int = 0

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS and self.path not in NOT_WRITES


@dataclass
class Fault:
    """Answer the next `times` requests whose path fully matches the regex `path` with `status`
    (or delay them by `delay` seconds); with `after`, the request is carried out first. With `hold`
    (a threading.Event), the delay ends as soon as the test sets it: a request held until the test has
    seen what it waits for, never longer than `delay`."""

    method: str
    path: str
    status: int = 0
    times: int = 1
    delay: float = 0.0
    reset: int = 1  # seconds announced in X-RateLimit-Reset for 429
    after: bool = False
    hold: threading.Event | None = None

    def wait(self) -> None:
        if self.hold is not None:
            self.hold.wait(self.delay)
        else:
            time.sleep(self.delay)


@dataclass
class Meanwhile:
    """`act(fake, body)`, run once just before the next `method` request whose path fully matches `path`
    is carried out: another client's write landing between a run's look and its own write."""

    method: str
    path: str
    act: object
    done: bool = False


@dataclass
class State:
    dashboards: dict = field(default_factory=dict)
    monitors: dict = field(default_factory=dict)
    downtimes: dict = field(default_factory=dict)
    notebooks: dict = field(default_factory=dict)


class FakeDatadog:
    """The fake's state, keys, faults and request log; `serve()` starts it on a free loopback port."""

    def __init__(self, api_key: str = "fake-api-key", app_key: str = "fake-app-key"):
        self.api_key = api_key
        self.app_key = app_key
        self.state = State()
        self.telemetry = telemetry.Telemetry()  # what the account received (seeded by tests)
        self.snapshots = snapshots.Snapshots()  # how graph snapshots render (steered by tests)
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.hooks: list[Meanwhile] = []
        self._ids = itertools.count(1001)
        self.turns = itertools.count()  # reads of downtimes, for their varying list order
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------
    def serve(self, port: int = 0) -> "FakeDatadog":
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="fakedd", daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.httpd = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    # --- test helpers ----------------------------------------------------------
    def inject(self, method: str, path: str, **kwargs) -> Fault:
        fault = Fault(method, path, **kwargs)
        self.faults.append(fault)
        return fault

    def meanwhile(self, method: str, path: str, act) -> Meanwhile:
        """Run `act(fake, body)` once, before the next matching request is carried out (see Meanwhile)."""
        hook = Meanwhile(method, path, act)
        self.hooks.append(hook)
        return hook

    def take_hook(self, method: str, path: str) -> Meanwhile | None:
        with self._lock:
            for hook in self.hooks:
                if not hook.done and hook.method == method and re.fullmatch(hook.path, path):
                    hook.done = True
                    return hook
        return None

    def another_client(self, method: str, path: str, body=None):
        """A request from another client of the same org, carried out at once (not logged in `requests`):
        its answer's body, or ApiError."""
        keys = {"DD-API-KEY": self.api_key, "DD-APPLICATION-KEY": self.app_key}
        return self.handle(method, path, {}, body, keys)[1]

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.is_write]

    def clear_log(self) -> None:
        self.requests.clear()

    def active_downtimes(self) -> list[dict]:
        return [d for d in self.state.downtimes.values() if d["attributes"]["status"] != "canceled"]

    # --- request routing -------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method in (method, "*") and re.fullmatch(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def handle(self, method: str, path: str, query: dict, body, headers) -> tuple[int, object]:
        if path.startswith("/snapshot/view/") and method == "GET":
            return snapshots.view(self, path)
        if path == "/api/v1/validate":
            if headers.get("DD-API-KEY") != self.api_key:
                raise ApiError(403, "Forbidden")
            return 200, {"valid": True}
        if method == "POST" and path in API_KEY_ONLY:
            if headers.get("DD-API-KEY") != self.api_key:
                raise ApiError(403, "Forbidden")
        elif headers.get("DD-API-KEY") != self.api_key or headers.get("DD-APPLICATION-KEY") != self.app_key:
            raise ApiError(403, "Forbidden")
        for pattern, verb, func in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                with self._lock:
                    return func(self, query, body, *match.groups())
        raise ApiError(404, "Not found")

    def new_id(self) -> int:
        return next(self._ids)


ROUTES = dashboards.ROUTES + monitors.ROUTES + downtimes.ROUTES + notebooks.ROUTES + telemetry.ROUTES + snapshots.ROUTES


@copies("rate limits", "429 answers carry X-RateLimit-Limit/-Period/-Remaining/-Reset/-Name (sent here in lower case: the client reads them case-insensitively)")
def rate_limit_headers(reset: int) -> dict:
    return {"x-ratelimit-limit": "10", "x-ratelimit-period": "10", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset), "x-ratelimit-name": "fake"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDatadog
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # No Nagle: otherwise every small answer waits for a delayed ACK (~40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:  # quiet: the request log is in fake.requests
        pass

    def _serve(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = Recorded(self.command, parts.path, parse_qs(parts.query), body)
        fake.requests.append(record)
        fault = fake.take_fault(self.command, parts.path)
        if fault and fault.delay and not fault.after:
            fault.wait()
        if fault and fault.status and not fault.after:
            record.status = fault.status
            return self._send_fault(fault)
        hook = fake.take_hook(self.command, parts.path)
        if hook:
            hook.act(fake, body)
        try:
            status, payload = fake.handle(self.command, parts.path, record.query, body, self.headers)
        except ApiError as err:
            status, payload = err.status, {"errors": err.errors}
        record.status = status
        if fault and fault.delay and fault.after:
            fault.wait()
        if fault and fault.status:
            return self.error_after_the_write(record, fault)
        self._send(status, payload)

    @copies("retries", "a 502/504 can arrive after the object was created (Fault(after=True, status=502): the write is done, the answer is the error)")
    def error_after_the_write(self, record: Recorded, fault: Fault) -> None:
        record.status = fault.status
        self._send_fault(fault)

    def _send_fault(self, fault: Fault) -> None:
        headers = rate_limit_headers(fault.reset) if fault.status == 429 else {}
        messages = {429: "Rate limit exceeded", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 403: "Forbidden"}
        self._send(fault.status, {"errors": [messages.get(fault.status, "error")]}, headers)

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        image = isinstance(payload, bytes)
        data = payload if image else b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if payload is not None:
                self.send_header("Content-Type", "image/png" if image else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
