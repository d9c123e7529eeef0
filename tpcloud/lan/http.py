"""HTTP/1.1 to devices on the LAN, on asyncio streams: what the KLAP and AES wires need, no more.

Devices speak plain HTTP. httpx cost a KLAP or AES command ~50 ms to import and ~50 ms more for
the SSL context it builds with certifi's CA bundle, which a plain-HTTP exchange never uses: more
than the exchange itself. So the LAN has this small client of its own (the cloud keeps httpx):
POST with an exact Content-Length on one keep-alive connection per device, and a reply read
within bounds (head, then a body by Content-Length, chunked, or until the device closes).
Nothing comes from the environment: no proxies, no TLS.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import NamedTuple
from urllib.parse import urlencode

from tpcloud.errors import NetworkError, ProtocolError, Timeout
from tpcloud.lan.transport import open_stream

# A device's reply is a few KiB (a hub with many children tens); past this it is not a device.
MAX_REPLY = 1024 * 1024
# Devices send a handful of short headers; a head past these bounds is not a device's.
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
_HEX = frozenset(b"0123456789abcdefABCDEF")


class Reply(NamedTuple):
    """A device's answer: header names in lower case, in the order sent, repeats kept."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def get_all(self, name: str) -> list[str]:
        """Every value of header NAME (a device may send Set-Cookie more than once)."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]


class _Dropped(Exception):
    """The connection ended before a reply began: the request went unanswered."""


class _BadReply(Exception):
    """What is wrong with a reply, to follow the device's address in a ProtocolError."""


class DeviceHttp:
    """One device's HTTP: a keep-alive connection, opened on first use and kept until ``close()``.

    One exchange at a time runs on it; another waits its turn.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._where = f"{host}:{port}"
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._turn = asyncio.Lock()

    async def post(
        self,
        path: str,
        body: bytes,
        *,
        timeout: float,
        cookie: tuple[str, str] | None = None,
        params: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> Reply:
        """POST BODY to PATH (PARAMS as its query) and return the reply, all within TIMEOUT seconds.

        No connection → WireRefused (refused) or DeviceUnreachable; no reply in time → Timeout;
        a reply that breaks HTTP or exceeds MAX_REPLY → ProtocolError; other failures → NetworkError.
        """
        request = self._request(path, body, cookie, params, content_type)
        async with self._turn:
            try:
                return await self._exchange(request, timeout)
            except BaseException:  # the connection is in an unknown state: never reuse it
                self._drop()
                raise

    async def close(self) -> None:
        """Close the connection (a later post opens a new one)."""
        if self._streams is None:
            return
        writer = self._streams[1]
        self._streams = None
        writer.close()
        with suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1)

    def _request(
        self, path: str, body: bytes, cookie: tuple[str, str] | None, params: dict[str, str] | None,
        content_type: str | None,
    ) -> bytes:
        target = f"{path}?{urlencode(params)}" if params else path
        lines = [f"POST {target} HTTP/1.1", f"Host: {self._where}", "Accept: */*", f"Content-Length: {len(body)}"]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        if cookie is not None:
            lines.append(f"Cookie: {cookie[0]}={cookie[1]}")
        return "\r\n".join([*lines, "", ""]).encode("latin-1") + body

    async def _exchange(self, request: bytes, timeout: float) -> Reply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # A device that closes its connections after each reply (a P100; python-kasa retries for
        # it) may close the one a request was just written to: the request was never answered,
        # so it is sent once more, on a new connection, within the same timeout.
        for _ in range(2):
            if self._streams is None or self._streams[0].at_eof():
                self._drop()
                self._streams = await open_stream(self.host, self.port, deadline - loop.time())
            try:
                reply, keep = await asyncio.wait_for(self._round_trip(request), deadline - loop.time())
            except _Dropped:
                self._drop()
                continue
            except asyncio.TimeoutError:
                raise Timeout(f"{self._where} did not answer within {timeout:g} s") from None
            if not keep:
                await self.close()
            return reply
        raise NetworkError(f"{self._where} closed the connection twice without answering")

    async def _round_trip(self, request: bytes) -> tuple[Reply, bool]:
        """Send REQUEST and read the reply; whether the connection may carry another one."""
        assert self._streams is not None
        reader, writer = self._streams
        try:
            try:
                writer.write(request)
                await writer.drain()
                first = await reader.readexactly(1)
            except (asyncio.IncompleteReadError, ConnectionError):  # ended or reset before a reply
                raise _Dropped from None
            return await _read_reply(reader, first)
        except _BadReply as exc:
            raise ProtocolError(f"{self._where} {exc}") from None
        except asyncio.IncompleteReadError:
            raise ProtocolError(f"{self._where} closed the connection mid-reply") from None
        except asyncio.LimitOverrunError:  # a line past the stream's limit (64 KiB)
            raise ProtocolError(f"{self._where} sent an overlong line") from None
        except OSError as exc:
            raise NetworkError(f"connection to {self._where} failed ({exc.strerror or type(exc).__name__})") from None

    def _drop(self) -> None:
        if self._streams is not None:
            self._streams[1].transport.abort()
            self._streams = None


def _too_large() -> _BadReply:
    return _BadReply(f"sent a reply larger than {MAX_REPLY // 1024} KiB")


async def _read_reply(reader: asyncio.StreamReader, first: bytes) -> tuple[Reply, bool]:
    """The reply whose first byte is FIRST, the rest on READER; whether the connection stays open."""
    status_line = first + await reader.readuntil(b"\n")
    version, _, rest = status_line.rstrip(b"\r\n").partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or not (code.isdigit() and rest[3:4] in (b"", b" ")):
        raise _BadReply("sent a reply that is not HTTP/1.x")
    status = int(code)
    headers = await _headers(reader, MAX_HEAD - len(status_line))
    reply = Reply(status, headers, b"")
    tokens = {t.strip().lower() for value in reply.get_all("connection") for t in value.split(",")}
    keep = "close" not in tokens and (version == b"HTTP/1.1" or "keep-alive" in tokens)
    codings = [c.strip().lower() for value in reply.get_all("transfer-encoding") for c in value.split(",")]
    lengths = reply.get_all("content-length")
    if status < 200 or status in (204, 304):
        body = b""
    elif codings:
        if codings != ["chunked"]:
            raise _BadReply("sent a reply in a transfer coding other than chunked")
        body = await _chunked(reader)
    elif lengths:
        body = await reader.readexactly(_content_length(lengths))
    else:
        body, keep = await _until_close(reader), False
    return reply._replace(body=body), keep


async def _headers(reader: asyncio.StreamReader, budget: int) -> tuple[tuple[str, str], ...]:
    """Header lines up to the blank line, within BUDGET bytes and MAX_HEADERS lines."""
    headers: list[tuple[str, str]] = []
    while (line := await reader.readuntil(b"\n")).rstrip(b"\r\n"):
        budget -= len(line)
        if budget < 0 or len(headers) == MAX_HEADERS:
            raise _BadReply(f"sent more than {MAX_HEADERS} headers or {MAX_HEAD // 1024} KiB of them")
        name, sep, value = line.rstrip(b"\r\n").partition(b":")
        text = value.strip(b" \t")
        if not sep or not name or name != name.strip() or any(c < 32 and c != 9 for c in text):
            raise _BadReply("sent a malformed header line")
        headers.append((name.decode("latin-1").lower(), text.decode("latin-1")))
    return tuple(headers)


def _content_length(values: list[str]) -> int:
    value = values[0].strip()
    if len(set(values)) != 1 or not (value.isascii() and value.isdigit()):
        raise _BadReply("sent a malformed Content-Length")
    digits = value.lstrip("0")
    if len(digits) > len(str(MAX_REPLY)) or int(digits or "0") > MAX_REPLY:
        raise _too_large()
    return int(digits or "0")


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body, then its trailer, which is read and dropped."""
    body = bytearray()
    while True:
        size_field = (await reader.readuntil(b"\n")).split(b";", 1)[0].strip()
        if not size_field or len(size_field) > 8 or not _HEX.issuperset(size_field):
            raise _BadReply("sent a malformed chunk size")
        size = int(size_field, 16)
        if size == 0:
            break
        if len(body) + size > MAX_REPLY:
            raise _too_large()
        body += await reader.readexactly(size)
        if (await reader.readuntil(b"\n")).rstrip(b"\r\n"):
            raise _BadReply("sent a chunk longer than its size")
    await _headers(reader, MAX_HEAD)
    return bytes(body)


async def _until_close(reader: asyncio.StreamReader) -> bytes:
    """A body without a length: all the device sends until it closes the connection."""
    body = bytearray()
    while chunk := await reader.read(65536):
        body += chunk
        if len(body) > MAX_REPLY:
            raise _too_large()
    return bytes(body)
