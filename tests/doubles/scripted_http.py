"""A scripted HTTP peer on a fresh 127.x address: it reads each request and answers with crafted
bytes, hangs up, resets, or never answers. The HTTP clients' tests (tests/test_lan_http.py,
tests/test_cloud_http.py) meet it; the wire emulators are the well-behaved peers.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Callable

from tests.doubles.wires import pick_loopback_host

# An answer gets the connection a request came on and says whether to keep it open.
Answer = Callable[[socket.socket], bool]


def http(status: int = 200, body: bytes = b"", *headers: str, version: str = "HTTP/1.1") -> bytes:
    """A reply's bytes; with no Content-Length among HEADERS, one is added unless the body is chunked."""
    named = [h.split(":", 1)[0].lower() for h in headers]
    if "content-length" not in named and "transfer-encoding" not in named and body:
        headers = (*headers, f"Content-Length: {len(body)}")
    return "".join([f"{version} {status} X\r\n", *(f"{h}\r\n" for h in headers), "\r\n"]).encode() + body


def reply(data: bytes, *, then_close: bool = False) -> Answer:
    def answer(conn: socket.socket) -> bool:
        conn.sendall(data)
        return not then_close

    return answer


def hang_up(conn: socket.socket) -> bool:
    """Close the connection without a byte of reply, as a P100 may."""
    return False


def reset(conn: socket.socket) -> bool:
    """Abort the connection (RST) without a byte of reply."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return False


def silent(conn: socket.socket) -> bool:
    """Never answer: wait for the client to give up."""
    try:
        conn.recv(1)
    except OSError:
        pass
    return False


def drip(conn: socket.socket) -> bool:
    """A reply that never ends, one byte every 0.1 s: every read succeeds."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    try:
        while True:
            conn.sendall(b" ")
            time.sleep(0.1)
    except OSError:
        return False


class ScriptedServer:
    """A TCP server on a fresh 127.x address: reads each request and answers it with ANSWERS in turn."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[int, bytes, bytes]] = []  # (connection number, head, body)
        self.connections = 0
        self._listener = socket.create_server((pick_loopback_host(), 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._open: list[socket.socket] = []

    def __enter__(self) -> ScriptedServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        for conn in self._open:
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            while request := self._read_request(conn):
                self.requests.append((number, *request))
                if not self.answers.pop(0)(conn):
                    return

    @staticmethod
    def _read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
            while len(body) < length:
                body += conn.recv(65536)
        except OSError:
            return None
        return head, body
