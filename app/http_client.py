"""A lean HTTP/1.1 keep-alive client for GET requests, one connection per instance.

Why not urllib3 for plain http: on a 2-core machine the load generator shares the CPU with the
app it measures, and urllib3 spends ~500 us of CPU per request (http.client ~250 us); this
client spends a small fraction of that, so the app, not the generator, is what gets measured
(see bench/apm_bench.py). It handles Content-Length, chunked and read-until-close bodies and
``Connection: close``; https goes through urllib3 (``Urllib3Client``) instead.
"""

import socket

import urllib3

MAX_HEADER = 64 * 1024


def header(head: bytes, name: bytes) -> bytes | None:
    """The value of header `name` in a lowercased response head (lines end with CRLF), or None."""
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    return head[start:head.find(b"\r\n", start)].strip()


class ProtocolError(Exception):
    """The server's answer was not an HTTP/1.x response we can read."""


class RemoteDisconnected(ConnectionError):
    """The server closed the connection before sending a response."""


class KeepAliveClient:
    """GETs over one TCP connection, reopened only when the server closes it."""

    def __init__(self, host: str, port: int, timeout: float, keepalive: bool = True, on_connect=None):
        self.address = (host, port)
        self.timeout = timeout
        self.keepalive = keepalive
        self.on_connect = on_connect or (lambda: None)
        self.sock: socket.socket | None = None
        self.buffer = b""
        netloc = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        self.head = f"Host: {netloc}\r\nUser-Agent: runbook-traffic\r\nAccept: */*\r\n".encode()
        if not keepalive:
            self.head += b"Connection: close\r\n"

    def get(self, path: str) -> int:
        """Send GET path and read the whole response; return its status code."""
        request = b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.head + b"\r\n"
        reused = self.sock is not None
        try:
            return self._exchange(request)
        except (RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            # A kept-alive connection the server had just closed (idle timeout): retry once, fresh.
            return self._exchange(request)

    def _exchange(self, request: bytes) -> int:
        if self.sock is None:
            self._connect()
        self.sock.sendall(request)
        status, length, chunked, close = self._read_head()
        if 200 <= status and status not in (204, 304):  # those never carry a body
            if chunked:
                self._read_chunked()
            elif length is not None:
                self._read_exactly(length)
            else:
                self._read_to_close()
                close = True
        if close or not self.keepalive:
            self.close()
        return status

    def _connect(self) -> None:
        self.sock = socket.create_connection(self.address, timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.on_connect()

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise RemoteDisconnected("server closed the connection")
        return data

    def _read_head(self) -> tuple[int, int | None, bool, bool]:
        """(status, Content-Length or None, chunked?, connection closes?) from the response head.

        Works on the raw bytes, reading only the three headers that frame the body: this runs once
        per request and is most of the client's own CPU time.
        """
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEADER:
                raise ProtocolError("response header too long")
            self.buffer += self._recv()
        head, self.buffer = self.buffer[:end + 2].lower(), self.buffer[end + 4:]
        if not head.startswith(b"http/1.") or not head[9:12].isdigit() or head[12:13] not in (b" ", b"\r"):
            raise ProtocolError(f"bad status line {head.splitlines()[0][:80]!r}")
        length = header(head, b"content-length")
        connection = header(head, b"connection")
        close = connection == b"close" or (head.startswith(b"http/1.0") and connection != b"keep-alive")
        return int(head[9:12]), int(length) if length is not None else None, \
            b"chunked" in (header(head, b"transfer-encoding") or b""), close

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self.buffer += self._recv()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
        return line

    def _read_chunked(self) -> None:
        while size := int(self._read_line().split(b";")[0], 16):
            self._read_exactly(size + 2)
        while self._read_line():  # trailers, up to the empty line
            pass

    def _read_to_close(self) -> None:
        try:
            while True:
                self._recv()
        except RemoteDisconnected:
            self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer = b""


class Urllib3Client:
    """The same interface over a urllib3 pool of one connection (https, or anything unusual)."""

    def __init__(self, url: str, timeout: float, keepalive: bool = True, on_connect=None):
        self.pool = urllib3.connection_from_url(url, maxsize=1, block=True, retries=False, timeout=timeout)
        self.pool.ConnectionCls = counting(self.pool.ConnectionCls, on_connect or (lambda: None))
        self.headers = {} if keepalive else {"Connection": "close"}

    def get(self, path: str) -> int:
        return self.pool.request("GET", path, headers=self.headers, redirect=False).status

    def close(self) -> None:
        self.pool.close()


def counting(connection_cls: type, on_connect) -> type:
    """A connection class that reports each real connect, so keep-alive is measured, not assumed."""

    class CountingConnection(connection_cls):
        def connect(self):
            super().connect()
            on_connect()

    return CountingConnection
