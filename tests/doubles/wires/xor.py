"""Wire layer: legacy Kasa XOR protocol on TCP: length-prefixed autokey frames, connection kept open.

    with XorServer(iot_device, host="127.0.0.2", port=9999) as srv:
        ... client talks to srv.host, srv.port ...
        srv.fault = "drip"        # change behaviour at any time

Fault modes (``fault=`` or the ``fault`` attribute):
- ``None``: answer every frame, keep the connection open for the next one.
- ``"silent"``: accept and read, never answer (the request is not executed).
- ``"drip"``: answer one byte every ``drip_interval`` seconds (default 1.0).
- ``"reset"``: send the length and half the ciphertext, then reset the connection (RST).
- ``"truncate"``: send the length and half the ciphertext, then close the connection (FIN).
- ``"not_json"``: answer a whole frame whose plaintext is not JSON.
- ``"absurd_length"``: announce a 0xFFFFFFFF-byte frame, send a few bytes, then idle.
In every mode except ``silent`` the request is executed by the device.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

from ._base import EmulatorBase
from .crypto import xor_decrypt, xor_encrypt

FAULTS = (None, "silent", "drip", "reset", "truncate", "absurd_length", "not_json")
MAX_REQUEST = 64 * 1024


class XorServer(EmulatorBase):
    def __init__(self, device, host: str = "127.0.0.2", port: int = 0, *, fault: str | None = None,
                 drip_interval: float = 1.0, close_after_reply: bool = False):
        super().__init__(host, port)
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.device = device
        self.fault = fault
        self.drip_interval = drip_interval
        self.close_after_reply = close_after_reply
        self.connections = 0
        self.request_count = 0
        self._sock: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    @property
    def requests(self) -> list[dict]:
        """Decoded requests, in order."""
        return [e["request"] for e in self.entries("request")]

    def _open(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, self._requested_port))
            s.listen(16)
        except OSError:
            s.close()
            raise
        self._sock = s
        self.port = s.getsockname()[1]
        self._spawn(self._accept_loop)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept_loop(self) -> None:
        sock = self._sock
        while not self._stopping.is_set():
            try:
                r = self._select([sock])
                if not r:
                    continue
                conn, peer = sock.accept()
            except (OSError, ValueError):
                return
            self.connections += 1
            with self._conns_lock:
                self._conns.add(conn)
            self._record("connect", peer=peer)
            self._spawn(self._serve_conn, conn, peer, name=f"xor-conn-{peer}")

    def _recv_exact(self, conn: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            if self._stopping.is_set():
                return None
            try:
                r = self._select([conn])
                if not r:
                    continue
                chunk = conn.recv(n - len(buf))
            except (OSError, ValueError):
                return None
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _idle(self, conn: socket.socket) -> None:
        """Hold the connection until the peer closes it or the server stops; discard input."""
        while not self._stopping.is_set():
            try:
                r = self._select([conn])
                if r and not conn.recv(4096):
                    return
            except (OSError, ValueError):
                return

    def _serve_conn(self, conn: socket.socket, peer) -> None:
        try:
            while not self._stopping.is_set():
                head = self._recv_exact(conn, 4)
                if head is None:
                    return
                (length,) = struct.unpack(">I", head)
                if length > MAX_REQUEST:
                    self._record("error", peer=peer, error=f"request length {length}")
                    return
                body = self._recv_exact(conn, length)
                if body is None:
                    return
                fault = self.fault
                plain = xor_decrypt(body)
                try:
                    request = json.loads(plain)
                except ValueError:
                    self._record("error", peer=peer, error="bad JSON", raw=plain)
                    return
                self.request_count += 1
                if fault == "silent":
                    self._record("request", peer=peer, request=request, response=None, fault=fault)
                    self._idle(conn)
                    return
                response = self.device.handle(request)
                self._record("request", peer=peer, request=request, response=response, fault=fault)
                out = json.dumps(response, separators=(",", ":")).encode()
                if fault == "not_json":
                    out = b"<html>not json</html>"
                cipher = xor_encrypt(out)
                frame = struct.pack(">I", len(out)) + cipher
                if fault == "drip":
                    for i in range(len(frame)):
                        if self._stopping.wait(self.drip_interval if i else 0):
                            return
                        conn.sendall(frame[i:i + 1])
                elif fault == "reset":
                    conn.sendall(frame[: 4 + len(cipher) // 2])
                    time.sleep(0.05)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                elif fault == "truncate":
                    conn.sendall(frame[: 4 + len(cipher) // 2])
                    return
                elif fault == "absurd_length":
                    conn.sendall(b"\xff\xff\xff\xff" + cipher[:8])
                    self._idle(conn)
                    return
                else:
                    conn.sendall(frame)
                if self.close_after_reply:
                    return
        except OSError:
            return
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
