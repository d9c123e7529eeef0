"""Cloud layer (and any HTTP peer): a server on loopback whose reply to every request never ends.

It stands in for the cloud (tests/test_cli_resilience.py) and for a device's KLAP or AES port
(tests/test_lan_transports.py).

Either it declares an absurd Content-Length, or it streams chunks with no length at all until
the client hangs up: what a client must refuse to hold in memory.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class EndlessReplyServer:
    def __init__(self, host: str = "127.0.0.1", *, declare: int | None = None) -> None:
        self._declare = declare
        self._socket = socket.socket()
        self._socket.bind((host, 0))
        self._socket.listen()
        self.host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._stop = threading.Event()

    def __enter__(self) -> "EndlessReplyServer":
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._socket.close()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                conn, _ = self._socket.accept()
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        length = f"Content-Length: {self._declare}" if self._declare is not None else "Transfer-Encoding: chunked"
        chunk = b" " * 65536
        framed = chunk if self._declare is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk)
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode())
            while not self._stop.is_set():
                conn.sendall(framed)
