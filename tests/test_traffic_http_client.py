"""The generator's lean HTTP/1.1 client against a loopback server sending canned responses."""

import socket
import threading

import pytest

from app.http_client import KeepAliveClient, ProtocolError


class CannedServer:
    """Accepts connections; answers each request with the next canned response; closes when told."""

    def __init__(self, responses: list[bytes | None]):
        self.responses = list(responses)  # None = close the connection instead of answering
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.responses:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self.answer(conn)

    def answer(self, conn):
        buffer = b""
        while self.responses:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
            request, buffer = buffer.split(b"\r\n\r\n", 1)
            self.requests.append(request)
            response = self.responses.pop(0)
            if response is None:
                return
            conn.sendall(response)
            if b"Connection: close" in response or response.startswith(b"HTTP/1.0"):
                return

    def close(self):
        self.sock.close()


@pytest.fixture
def serve():
    servers = []

    def make(*responses):
        servers.append(CannedServer(list(responses)))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def client(server, **kwargs):
    return KeepAliveClient("127.0.0.1", server.port, timeout=5, **kwargs)


def test_keepalive_reuses_one_connection_for_content_length_bodies(serve):
    server = serve(OK, OK, OK)
    c = client(server)
    assert [c.get("/a"), c.get("/b"), c.get("/c")] == [200, 200, 200]
    assert server.connections == 1
    assert server.requests[1].startswith(b"GET /b HTTP/1.1\r\nHost: 127.0.0.1:")


def test_chunked_bodies_are_read_to_the_end_so_the_next_response_lines_up(serve):
    chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    server = serve(chunked, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    c = client(server)
    assert [c.get("/"), c.get("/")] == [201, 404]
    assert server.connections == 1


def test_connection_close_and_http10_and_no_length_reopen_the_connection(serve):
    server = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nread until close",
        OK,
    )
    opened = []
    c = client(server, on_connect=lambda: opened.append(1))
    assert [c.get("/") for _ in range(4)] == [200, 200, 200, 200]
    assert len(opened) == server.connections == 4


def test_no_body_on_204_and_304(serve):
    server = serve(b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", OK)
    c = client(server)
    assert [c.get("/"), c.get("/"), c.get("/")] == [204, 304, 200]
    assert server.connections == 1


def test_a_kept_alive_connection_closed_by_the_server_is_retried_once_on_a_new_one(serve):
    server = serve(OK, None, OK)
    c = client(server)
    assert c.get("/") == 200
    assert c.get("/") == 200  # the server dropped the idle connection; a fresh one answers
    assert server.connections == 2


def test_without_keepalive_each_request_says_connection_close(serve):
    server = serve(OK, OK)
    c = client(server, keepalive=False)
    assert [c.get("/"), c.get("/")] == [200, 200]
    assert server.connections == 2
    assert all(b"Connection: close" in r for r in server.requests)


def test_garbage_is_a_protocol_error(serve):
    server = serve(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    with pytest.raises(ProtocolError, match="bad status line"):
        client(server).get("/")
