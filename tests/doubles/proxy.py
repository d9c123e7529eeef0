"""A forward HTTP proxy on loopback, as a user's corporate or local proxy would be: standard library only.

    with ForwardProxy() as proxy:                          # http://127.0.0.1:<picked>
        cli(..., env={"HTTP_PROXY": proxy.url})
        assert proxy.seen == [("POST", "http://127.0.0.1:.../?...")]

    with ForwardProxy(credentials=("user", "pass")) as proxy:
        cli(..., env={"HTTPS_PROXY": proxy.url_with("user", "pass")})
        assert proxy.authorizations == [basic("user", "pass")]

It speaks what clients send a proxy:

- **absolute form** for an ``http://`` target (``POST http://127.0.0.1:PORT/path?q HTTP/1.1``): the
  request is sent on to the target in origin form (``POST /path?q``) on a new connection
  (``Connection: close`` upstream), its reply read in full and relayed with a ``Content-Length``.
  The client's connection is kept alive (HTTP/1.1 without ``Connection: close``) for its next
  request, which may name another target;
- **CONNECT** ``host:port`` (how an ``https://`` target is reached): ``HTTP/1.1 200 Connection
  established``, then bytes both ways until each side has finished; the TLS inside is the
  client's and the server's business, never the proxy's.

With ``credentials``, a request without ``Proxy-Authorization: Basic base64(user:password)`` is
answered ``407`` with ``Proxy-Authenticate: Basic realm="test"`` (and the connection closed).

It only ever connects to IPv4 literals in 127.0.0.0/8: any other target (a name, another address)
is answered ``403``, so no test sends traffic off loopback through it. A target that does not
answer is ``502``. Every request is recorded (``requests``; ``seen`` and ``authorizations`` for
short) before it is answered, so a test that has waited for its client reads a complete record.

``nothing_listening()`` gives a loopback port where no one listens (connecting is refused), held
for as long as the ``with`` lasts so no one else can take it meanwhile.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import selectors
import socket
import threading
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote, urlsplit

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 2**20
UPSTREAM_TIMEOUT = 10.0
# Never sent on: they describe one hop (RFC 9110 §7.6.1), or they are the proxy's own.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade",
}


def basic(user: str, password: str) -> str:
    """The ``Proxy-Authorization`` value a client sends for USER and PASSWORD."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class ProxyRequest:
    """One request the proxy received, and the status it answered (or relayed) for it."""

    method: str
    target: str  # as on the request line: an absolute URL, or host:port for CONNECT
    proxy_authorization: str | None
    status: int | None = None


class _Refused(Exception):
    def __init__(self, status: int, reason: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.extra = status, reason, extra


class _Closed(Exception):
    """The client hung up between requests."""


class _Reader:
    """Reads a request's head and body off a socket, keeping what it read past them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise _Refused(431, "Request Header Fields Too Large")
            if not self._fill():
                if self.buffer:
                    raise _Refused(400, "Bad Request")
                raise _Closed()
        end = self.buffer.index(b"\r\n\r\n") + 4
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        return head

    def exactly(self, n: int) -> bytes:
        if n > MAX_BODY:
            raise _Refused(413, "Content Too Large")
        while len(self.buffer) < n:
            if not self._fill():
                raise _Closed()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise _Refused(400, "Bad Request")
            if not self._fill():
                raise _Closed()
        end = self.buffer.index(b"\r\n") + 2
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_text = self.line().split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Refused(400, "Bad Request") from None
            if size == 0:
                while self.line() != b"\r\n":  # trailers, dropped
                    pass
                return bytes(body)
            body += self.exactly(size)
            if len(body) > MAX_BODY:
                raise _Refused(413, "Content Too Large")
            self.exactly(2)


class ForwardProxy:
    """A forward HTTP proxy on 127.0.0.1 (port picked by the OS), in threads. A context manager."""

    def __init__(self, *, credentials: tuple[str, str] | None = None, host: str = "127.0.0.1") -> None:
        if ipaddress.ip_address(host) not in LOOPBACK:
            raise ValueError(f"the test proxy listens only on 127.0.0.0/8, not {host!r}")
        self.credentials = credentials
        self._expected = basic(*credentials) if credentials else None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._requests: list[ProxyRequest] = []
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "ForwardProxy":
        thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() at once
        self._listener.close()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)

    # -- what a test uses --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        """The proxy's URL with USER and PASSWORD in it, percent-encoded as a URL needs."""
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}"

    @property
    def requests(self) -> list[ProxyRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def seen(self) -> list[tuple[str, str]]:
        """(method, target) of every request received, in order."""
        return [(r.method, r.target) for r in self.requests]

    @property
    def authorizations(self) -> list[str]:
        """Every ``Proxy-Authorization`` value received, in order (requests without one left out)."""
        return [r.proxy_authorization for r in self.requests if r.proxy_authorization is not None]

    # -- serving -----------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn,), name="proxy-conn", daemon=True)
            with self._lock:
                self._open.add(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        reader = _Reader(conn)
        try:
            while not self._stopping.is_set():
                if not self._one_request(conn, reader):
                    break
        except (_Closed, OSError):
            pass
        finally:
            self._forget(conn)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def _one_request(self, conn: socket.socket, reader: _Reader) -> bool:
        """Serve one request; True if the client's connection stays open for another."""
        record: ProxyRequest | None = None
        try:
            head = reader.head()
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise _Refused(400, "Bad Request")
            method, target, version = parts
            headers: list[tuple[str, str]] = []
            for line in lines[1:]:
                if not line:
                    continue
                name, sep, value = line.partition(":")
                if not sep or not name.strip() or name != name.strip():
                    raise _Refused(400, "Bad Request")
                headers.append((name, value.strip()))
            found = _header(headers, "proxy-authorization")
            record = ProxyRequest(method, target, found)
            with self._lock:
                self._requests.append(record)
            # Read in full before any answer: closing on unread bytes would reset the connection
            # under the answer, and the client would see a reset instead of a 407.
            body = b"" if method == "CONNECT" else self._read_body(reader, headers)
            if self._expected is not None and not _authorized(found, self._expected):
                raise _Refused(407, "Proxy Authentication Required", (("Proxy-Authenticate", 'Basic realm="test"'),))
            if method == "CONNECT":
                self._tunnel(conn, reader, target, record)
                return False
            keep_alive = _keeps_alive(version, headers)
            self._forward(conn, method, target, headers, body, record, keep_alive)
            return keep_alive
        except _Refused as refusal:
            if record is not None:
                record.status = refusal.status
            _send_status(conn, refusal.status, refusal.reason, refusal.extra)
            return False

    @staticmethod
    def _read_body(reader: _Reader, headers: list[tuple[str, str]]) -> bytes:
        if "chunked" in (_header(headers, "transfer-encoding") or "").lower():
            return reader.chunked()
        length = _header(headers, "content-length")
        if length is None:
            return b""
        if not length.isdigit():
            raise _Refused(400, "Bad Request")
        return reader.exactly(int(length))

    @staticmethod
    def _upstream(host: str | None, port: int) -> socket.socket:
        """A connection to HOST:PORT, which must be an address in 127.0.0.0/8."""
        try:
            allowed = host is not None and ipaddress.ip_address(host) in LOOPBACK
        except ValueError:
            allowed = False
        if not allowed:
            raise _Refused(403, "Forbidden")
        try:
            sock = socket.create_connection((host, port), timeout=UPSTREAM_TIMEOUT)
        except OSError:
            raise _Refused(502, "Bad Gateway") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _forward(self, conn: socket.socket, method: str, target: str, headers: list[tuple[str, str]],
                 body: bytes, record: ProxyRequest, keep_alive: bool) -> None:
        url = urlsplit(target)
        if url.scheme != "http" or not url.netloc:
            raise _Refused(400, "Bad Request")  # origin form, or https:// without CONNECT
        try:
            port = url.port or 80
        except ValueError:
            raise _Refused(400, "Bad Request") from None
        upstream = self._upstream(url.hostname, port)
        with upstream:
            origin_form = (url.path or "/") + (f"?{url.query}" if url.query else "")
            named = {v.strip().lower() for v in (_header(headers, "connection") or "").split(",")}
            sent = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | named | {"content-length"}]
            if not any(k.lower() == "host" for k, _ in sent):
                sent.insert(0, ("Host", url.netloc))
            if body or method in ("POST", "PUT", "PATCH"):
                sent.append(("Content-Length", str(len(body))))
            sent.append(("Connection", "close"))
            request = f"{method} {origin_form} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent) + "\r\n"
            upstream.sendall(request.encode("latin-1") + body)
            reply = http.client.HTTPResponse(upstream, method=method)
            try:
                reply.begin()
                content = reply.read()
            except (OSError, http.client.HTTPException):
                raise _Refused(502, "Bad Gateway") from None
        record.status = reply.status
        named = {v.strip().lower() for v in (reply.getheader("connection") or "").split(",")}
        relayed = [(k, v) for k, v in reply.getheaders() if k.lower() not in HOP_BY_HOP | named | {"content-length"}]
        if method == "HEAD" and reply.getheader("content-length") is not None:
            relayed.append(("Content-Length", reply.getheader("content-length")))
        elif reply.status not in (204, 304) and not 100 <= reply.status < 200:
            relayed.append(("Content-Length", str(len(content))))
        if not keep_alive:
            relayed.append(("Connection", "close"))
        head = f"HTTP/1.1 {reply.status} {reply.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in relayed) + "\r\n"
        conn.sendall(head.encode("latin-1") + (b"" if method == "HEAD" else content))

    def _tunnel(self, conn: socket.socket, reader: _Reader, target: str, record: ProxyRequest) -> None:
        host, sep, port_text = target.rpartition(":")
        if not sep or not port_text.isdigit():
            raise _Refused(400, "Bad Request")
        upstream = self._upstream(host.strip("[]"), int(port_text))
        with self._lock:
            self._open.add(upstream)
        try:
            upstream.settimeout(None)
            record.status = 200
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if reader.buffer:  # whatever the client sent after the CONNECT head
                upstream.sendall(bytes(reader.buffer))
                reader.buffer.clear()
            _relay(conn, upstream)
        finally:
            self._forget(upstream)
            upstream.close()


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways between A and B until each has finished sending (or one fails)."""
    other = {a: b, b: a}
    open_for_reading = {a, b}
    with selectors.DefaultSelector() as selector:
        for sock in open_for_reading:
            selector.register(sock, selectors.EVENT_READ)
        while open_for_reading:
            for key, _ in selector.select():
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if data:
                    try:
                        other[sock].sendall(data)
                    except OSError:
                        return
                    continue
                selector.unregister(sock)
                open_for_reading.discard(sock)
                with contextlib.suppress(OSError):
                    other[sock].shutdown(socket.SHUT_WR)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _authorized(found: str | None, expected: str) -> bool:
    if found is None:
        return False
    scheme, _, token = found.partition(" ")
    return scheme.lower() == "basic" and f"Basic {token.strip()}" == expected


def _keeps_alive(version: str, headers: list[tuple[str, str]]) -> bool:
    tokens = {t.strip().lower() for t in (_header(headers, "connection") or "").split(",")}
    tokens |= {t.strip().lower() for t in (_header(headers, "proxy-connection") or "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _send_status(conn: socket.socket, status: int, reason: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
    body = f"{status} {reason}\n".encode()
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in extra)
    head += f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with contextlib.suppress(OSError):
        conn.sendall(head.encode("latin-1") + body)


@contextlib.contextmanager
def nothing_listening(host: str = "127.0.0.1") -> Iterator[int]:
    """A port on HOST (in 127.0.0.0/8) where connecting is refused: bound, never listening, and held
    until the ``with`` ends, so no other test can start a server on it meanwhile."""
    if ipaddress.ip_address(host) not in LOOPBACK:
        raise ValueError(f"only 127.0.0.0/8, not {host!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]
