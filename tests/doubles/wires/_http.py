"""Wire layer: a small threaded HTTP/1.1 server (keep-alive, exact Content-Length) for the device emulators."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ._base import EmulatorBase

MAX_BODY = 1024 * 1024


@dataclass
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes
    peer: tuple


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TP-LINK"  # real devices do not say much more
    sys_version = ""
    timeout = 60

    def log_message(self, format, *args):  # noqa: A002 - silence stderr
        pass

    def _dispatch(self) -> None:
        emulator: HttpEmulator = self.server.emulator  # type: ignore[attr-defined]
        emulator.http_count += 1
        if emulator.drop_requests > 0:  # gone before it answers: the client sees the connection close
            emulator.drop_requests -= 1
            emulator._record("dropped", path=self.path)
            self.close_connection = True
            return
        length = self.headers.get("Content-Length")
        if self.command == "POST" and length is None:
            self._send(HttpResponse(411, b"", close=True))
            return
        try:
            n = int(length or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self._send(HttpResponse(400, b"", close=True))
            return
        body = self.rfile.read(n) if n else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        cookies: dict[str, str] = {}
        for raw in self.headers.get_all("Cookie") or []:
            jar = SimpleCookie()
            try:
                jar.load(raw)
            except Exception:  # noqa: BLE001 - a bad cookie header is just ignored
                continue
            cookies.update({k: m.value for k, m in jar.items()})
        req = HttpRequest(self.command, parts.path, query, {k.lower(): v for k, v in
                                                             self.headers.items()},
                          cookies, body, self.client_address)
        try:
            resp = emulator._handle_http(req)
        except Exception as exc:  # noqa: BLE001 - a crash in the emulator is a 500, logged
            emulator._record("crash", path=req.path, error=repr(exc))
            resp = HttpResponse(500, b"", close=True)
        self._send(resp)

    def _send(self, resp: HttpResponse) -> None:
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        if resp.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if resp.body:
            self.wfile.write(resp.body)
        if self.server.emulator.close_after_reply:  # type: ignore[attr-defined]
            self.close_connection = True  # without saying so, as a P100 does

    do_POST = _dispatch
    do_GET = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, addr, emulator: "HttpEmulator"):
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def get_request(self):
        conn, addr = super().get_request()
        self.emulator.connection_count += 1
        with self.sockets_lock:
            self.open_sockets.add(conn)
        return conn, addr

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


# The accounts a device may accept instead of its owner's (``accepts``): the factory defaults.
DEFAULT_ACCOUNTS = {
    "kasa": ("kasa@tp-link.net", "kasaSetup"),
    "test": ("test@tp-link.net", "test"),
    "blank": ("", ""),
}


class HttpEmulator(EmulatorBase):
    """Base for the KLAP and AES emulators: the DEVICE behind them, the account it accepts
    (its owner's, or one of DEFAULT_ACCOUNTS), and the HTTP server; subclasses implement
    ``_handle_http``."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0, *, device, username: str, password: str,
                 accepts: str, session_timeout: int):
        super().__init__(host, port)
        self.device = device
        self.username = username
        self.password = password
        self.accepts = accepts
        self.reject_all_auth = False
        self.session_timeout = session_timeout
        info = getattr(device, "info", None)
        if isinstance(info, dict) and "ip" in info:
            info["ip"] = host
        self._httpd: _Server | None = None
        self.http_count = 0  # every HTTP request received, whatever its path or fate
        self.connection_count = 0  # every TCP connection accepted (a keep-alive client: one a command)
        # A P100 closes the connection after each reply without a "Connection: close" (python-kasa
        # retries for it); drop_requests closes it on the next N requests before any reply.
        self.close_after_reply = False
        self.drop_requests = 0

    def credentials(self) -> tuple[str, str]:
        """The (username, password) the device accepts right now."""
        if self.accepts == "user":
            return (self.username, self.password)
        try:
            return DEFAULT_ACCOUNTS[self.accepts]
        except KeyError:
            raise ValueError(f"unknown account {self.accepts!r}") from None

    def _handle_http(self, req: HttpRequest) -> HttpResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    def _open(self) -> None:
        self._httpd = _Server((self.host, self._requested_port), self)
        self.port = self._httpd.server_address[1]
        self._spawn(self._httpd.serve_forever, 0.01)  # how soon shutdown() is noticed

    def _close(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        httpd.shutdown()
        with httpd.sockets_lock:
            socks = list(httpd.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        self._httpd = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
