"""The cloud's HTTP: tpcloud's own HTTP/1.1 (``tpcloud.http11``) over verified TLS, through the
proxy the environment names.

Connections: one keep-alive connection per server is reused from call to call; calls that run at
once (``switch --all`` through the cloud) each get their own.

TLS is made on the first https request, so a cloud reached over plain HTTP (a local proxy in
``TPCLOUD_CLOUD_URL``, the test cloud) never loads a CA. Verification of the certificate and the
host name is never turned off. Which CAs are trusted, the first of: ``SSL_CERT_FILE``/
``SSL_CERT_DIR`` when set; the system's CA directory where OpenSSL keeps one hashed (Debian,
Ubuntu, Alpine), which costs one certificate per handshake instead of 20-30 ms to parse a whole
bundle; the system's bundle where it keeps only that (Fedora, Termux); certifi's bundle where the
system has neither (macOS and Windows Pythons from python.org).

Proxies, as curl and urllib read them: ``https_proxy``/``http_proxy`` by the cloud URL's scheme,
else ``all_proxy``, either case (lower case first), and ``no_proxy`` (host names, domains with or
without a leading dot, IP networks, ``*``). Only http:// proxies: https goes through a CONNECT
tunnel, http as a whole URL; credentials in the proxy URL are sent as Basic auth and never shown.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlsplit

from tpcloud import errors, http11
from tpcloud.http11 import Reply

if TYPE_CHECKING:
    import ssl

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PROXY_AUTH = "it wants credentials it was not given, or refused those given (HTTP 407)"


class Proxy(NamedTuple):
    """An http:// proxy: where it is, its Basic credentials as a header value, and its URL without them."""

    host: str
    port: int
    authorization: str | None
    shown: str


class CloudHttp:
    """POSTs to the cloud's servers; owns its connections until :meth:`aclose`."""

    def __init__(
        self, tls: Callable[[], "ssl.SSLContext"] | None = None, environ: Mapping[str, str] = os.environ
    ) -> None:
        self._make_tls = tls or trust_store
        self._tls: "ssl.SSLContext | None" = None
        self._environ = environ
        self._idle: dict[tuple[str, str, int], list[http11.Connection]] = {}

    async def post(self, url: str, body: bytes, headers: Sequence[tuple[str, str]], *, limit: int, timeout: float) -> Reply:
        """POST BODY to URL (with its query) and return the reply, decoded, within TIMEOUT seconds.

        Failing to connect → NetworkError (CertificateError for a certificate that does not
        verify); no reply in time → Timeout; a reply that is not HTTP, or larger than LIMIT
        bytes, → ProtocolError.
        """
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        if scheme not in _DEFAULT_PORTS or not host:
            raise errors.UsageError(f"the cloud URL {parts.scheme}://{host} is not an http or https URL")
        port = parts.port or _DEFAULT_PORTS[scheme]
        proxy = proxy_for(scheme, host, self._environ)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        authority = f"[{host}]" if ":" in host else host  # an IPv6 address in brackets
        sent = [("Host", authority if parts.port is None else f"{authority}:{port}"), *headers, ("Accept-Encoding", "gzip")]
        if proxy is not None and scheme == "http":  # a proxy forwards a whole URL; CONNECT carries the rest
            target = f"http://{sent[0][1]}{target}"
            if proxy.authorization:
                sent.append(("Proxy-Authorization", proxy.authorization))
        origin = (scheme, host, port)
        idle = self._idle.setdefault(origin, [])
        connection = idle.pop() if idle else http11.Connection(
            f"the cloud ({host})", lambda left: self._connect(scheme, host, port, proxy, left), limit=limit
        )
        try:
            reply = await connection.exchange(http11.request("POST", target, sent, body), timeout)
        finally:
            idle.append(connection)  # one that closed opens again on its next exchange
        if proxy is not None and reply.status == 407:  # the proxy's answer, not the cloud's
            raise errors.NetworkError(f"cannot reach the cloud at {host} through the proxy at {proxy.shown}: {_PROXY_AUTH}")
        return _decoded(reply, connection.where, limit)

    async def __aenter__(self) -> "CloudHttp":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                await connection.close()
        self._idle.clear()

    async def _connect(self, scheme: str, host: str, port: int, proxy: Proxy | None, timeout: float) -> http11.Streams:
        """A connection to HOST:PORT, through PROXY, over TLS for https, within TIMEOUT seconds."""
        tls = self._context() if scheme == "https" else None
        via = f" through the proxy at {proxy.shown}" if proxy else ""
        try:
            return await asyncio.wait_for(self._open(host, port, proxy, tls), timeout)
        except asyncio.TimeoutError:
            raise errors.Timeout(f"cannot reach the cloud at {host}{via}: no connection within {timeout:g} s") from None
        except OSError as exc:
            verify = getattr(exc, "verify_message", None)
            if verify is not None:  # ssl.SSLCertVerificationError, without importing ssl for the check
                raise errors.CertificateError(
                    f"cannot reach the cloud at {host}: certificate verify failed ({verify})",
                    hint="if a proxy or firewall inspects TLS, point SSL_CERT_FILE at its CA",
                ) from None
            raise errors.NetworkError(f"cannot reach the cloud at {host}{via}: {exc.strerror or exc}") from None

    async def _open(self, host: str, port: int, proxy: Proxy | None, tls: "ssl.SSLContext | None") -> http11.Streams:
        if proxy is None:
            return await asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None)
        if tls is None:
            return await asyncio.open_connection(proxy.host, proxy.port)
        tunnel = await _tunnel(proxy, host, port)
        try:
            return await asyncio.open_connection(sock=tunnel, ssl=tls, server_hostname=host)
        except BaseException:
            tunnel.close()
            raise

    def _context(self) -> "ssl.SSLContext":
        if self._tls is None:
            self._tls = self._make_tls()
        return self._tls


def trust_store(environ: Mapping[str, str] = os.environ) -> "ssl.SSLContext":
    """A verifying TLS context trusting the CAs of ENVIRON's SSL_CERT_FILE/SSL_CERT_DIR, else the
    system's hashed CA directory, else the system's bundle, else certifi's (see the module's
    docstring)."""
    import ssl

    cafile, capath = environ.get("SSL_CERT_FILE") or None, environ.get("SSL_CERT_DIR") or None
    if cafile or capath:
        try:
            return ssl.create_default_context(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as exc:
            raise errors.UsageError(f"SSL_CERT_FILE/SSL_CERT_DIR name no readable CA certificates ({exc})") from None
    system = ssl.get_default_verify_paths()
    directory = _hashed_ca_directory(system.capath)
    if directory is not None:
        return ssl.create_default_context(capath=directory)
    if system.cafile is not None:  # None unless the file exists
        return ssl.create_default_context(cafile=system.cafile)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _hashed_ca_directory(path: str | None) -> str | None:
    """PATH if it holds CA certificates under OpenSSL's hashed names (``5ad8a5d6.0``)."""
    if not path:
        return None
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                stem, dot, number = entry.name.partition(".")
                if dot and number.isdigit() and len(stem) == 8 and all(c in "0123456789abcdef" for c in stem):
                    return path
    except OSError:
        pass
    return None


def proxy_for(scheme: str, host: str, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy ENVIRON names for SCHEME://HOST, or None (none named, or HOST is in no_proxy)."""

    def variable(name: str) -> str:
        return (environ.get(name) or environ.get(name.upper()) or "").strip()

    value = variable(f"{scheme}_proxy") or variable("all_proxy")
    if not value or _bypassed(host, variable("no_proxy")):
        return None
    parts = urlsplit(value if "://" in value else f"http://{value}")
    shown = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    if parts.scheme != "http" or not parts.hostname:
        raise errors.UsageError(
            f"the proxy {shown} is not one tpcloud can use: only http:// proxies are supported",
            hint="set https_proxy/http_proxy to an http:// proxy, or no_proxy to skip it",
        )
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(parts.hostname, parts.port or 80, authorization, shown)


def _bypassed(host: str, no_proxy: str) -> bool:
    host = host.lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        if "/" in entry:
            if _in_network(host, entry):
                return True
            continue
        name = entry.strip("[]") if entry.startswith("[") else entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        name = name.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _in_network(host: str, network: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


async def _tunnel(proxy: Proxy, host: str, port: int) -> socket.socket:
    """A socket to PROXY that has agreed (CONNECT) to carry bytes to HOST:PORT."""
    loop = asyncio.get_running_loop()
    sock = await _connected(proxy.host, proxy.port)
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        await loop.sock_sendall(sock, "\r\n".join([*lines, "", ""]).encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:  # a proxy sends nothing after its head until the TLS begins
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk or len(head) + len(chunk) > http11.MAX_HEAD:
                raise ConnectionError(f"the proxy at {proxy.shown} ended the CONNECT without a proper answer")
            head += chunk
        status = head.split(b"\r\n", 1)[0].split(b" ")
        code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
        if code == 407:
            raise ConnectionError(_PROXY_AUTH)
        if not 200 <= code < 300:
            raise ConnectionError(f"the proxy at {proxy.shown} refused a tunnel to {host}:{port} (HTTP {code or '?'})")
        return sock
    except BaseException:
        sock.close()
        raise


async def _connected(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket connected to HOST:PORT, trying each address it resolves to."""
    loop = asyncio.get_running_loop()
    failure: OSError = OSError(f"{host} resolves to no address")
    for family, kind, proto, _, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:  # asyncio words it "Connect call failed (address)"; the reason is in errno
            sock.close()
            failure = OSError(exc.errno, os.strerror(exc.errno)) if exc.errno else exc
        except BaseException:
            sock.close()
            raise
    raise failure


def _decoded(reply: Reply, where: str, limit: int) -> Reply:
    """REPLY with its body decoded from gzip or deflate (the cloud may compress), within LIMIT."""
    coding = reply.get("content-encoding").strip().lower()
    if coding in ("", "identity"):
        return reply
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise errors.ProtocolError(f"{where} sent a reply in a content coding tpcloud does not know ({coding})")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # 32: gzip or zlib, by their headers
    try:
        body = inflater.decompress(reply.body, limit + 1)
    except zlib.error:
        raise errors.ProtocolError(f"{where} sent a {coding} reply that does not decompress") from None
    if len(body) > limit:
        raise errors.ProtocolError(f"{where} {http11.too_large(limit)}")
    return reply._replace(body=body)
