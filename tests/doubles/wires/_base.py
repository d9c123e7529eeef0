"""Wire layer plumbing: a threaded server with start/stop, a request log and loopback checks."""

from __future__ import annotations

import ipaddress
import random
import select
import socket
import threading
import time
from typing import Any


def check_loopback(host: str) -> str:
    """Emulators bind and send only on 127.0.0.0/8."""
    if ipaddress.ip_address(host) not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError(f"emulators only bind on 127.0.0.0/8, not {host!r}")
    return host


def pick_loopback_host(*, udp_ports: tuple[int, ...] = (), tcp_ports: tuple[int, ...] = (),
                       rng: random.Random | None = None) -> str:
    """A random 127.x.y.z (never 127.0.0.1) where the given ports are free right now.

    Handy when the test suite may run beside other suites on the same machine: fixed ports such
    as 9999 and 20002 then rarely collide.
    """
    rng = rng or random.Random()
    for _ in range(200):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        socks = []
        try:
            for p in udp_ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((host, p))
            for p in tcp_ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((host, p))
            return host
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free loopback address found")


class LogEntry(dict):
    """One logged exchange: a dict with at least ``time`` and ``kind``."""


class EmulatorBase:
    """Common surface: ``host``, ``port``, ``log``, ``start()``, ``stop()``, context manager."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0):
        self.host = check_loopback(host)
        self._requested_port = port
        self.port: int = port
        self.log: list[LogEntry] = []
        self._log_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self.running = False

    # subclasses implement _open() (bind, set self.port) and _serve() (loop until stopping),
    # waiting for their sockets with _select(), which stop() interrupts at once
    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _record(self, kind: str, **fields: Any) -> LogEntry:
        entry = LogEntry(time=time.time(), kind=kind, **fields)
        with self._log_lock:
            self.log.append(entry)
        return entry

    def entries(self, kind: str | None = None) -> list[LogEntry]:
        with self._log_lock:
            return [e for e in self.log if kind is None or e["kind"] == kind]

    def _select(self, socks: list) -> list:
        """Those of SOCKS that are readable within 0.1 s; none, at once, when the emulator stops."""
        wake = self._wake
        if wake is None:  # stopped already
            return []
        ready, _, _ = select.select([*socks, wake[0]], [], [], 0.1)
        return [s for s in ready if s is not wake[0]]

    def _spawn(self, target, *args, name: str | None = None) -> threading.Thread:
        t = threading.Thread(target=target, args=args, daemon=True,
                             name=name or f"{type(self).__name__}-{self.host}:{self.port}")
        t.start()
        self._threads.append(t)
        return t

    def start(self):
        if self.running:
            return self
        self._stopping.clear()
        self._wake = socket.socketpair()
        try:
            self._open()
        except BaseException:
            self._close_wake()
            raise
        self.running = True
        return self

    def _close_wake(self) -> None:
        for s in self._wake or ():
            s.close()
        self._wake = None

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._stopping.set()
        self._wake[1].send(b"!")  # never read: every thread in _select() sees it until the end
        self._close()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._close_wake()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} running={self.running}>"
