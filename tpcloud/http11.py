"""HTTP/1.1 on asyncio streams, as tpcloud's two HTTP peers need it and no more: devices on the
LAN (KLAP and AES, plain HTTP) and the TP-Link cloud (JSON, over TLS).

httpx once carried both. Importing it (with httpcore, anyio, h11, idna) and the TLS context it
makes took 60-100 ms of every command, more than the exchange itself on a LAN or a near cloud.
What these peers need is small: a request with an exact Content-Length, sent on a keep-alive
connection, and a reply whose head, then body (by Content-Length, chunked, or until the peer
closes) is read within bounds. Whoever opens the connection decides about TLS and proxies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from typing import NamedTuple

from tpcloud.errors import NetworkError, ProtocolError, Timeout

# A peer sends a handful of short headers; a head past these bounds is not a device's or the cloud's.
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
_HEX = frozenset(b"0123456789abcdefABCDEF")

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Reply(NamedTuple):
    """A peer's answer: header names in lower case, in the order sent, repeats kept."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def get_all(self, name: str) -> list[str]:
        """Every value of header NAME (a device may send Set-Cookie more than once)."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def get(self, name: str, default: str = "") -> str:
        """The first value of header NAME, or DEFAULT."""
        return next(iter(self.get_all(name)), default)


class BadReply(Exception):
    """What is wrong with a reply, worded to follow the peer's name ("sent a malformed ...")."""


class _Dropped(Exception):
    """The connection ended before a reply began: the request went unanswered."""


def request(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    """The bytes of one request: TARGET as given (a path, or a whole URL for a proxy), HEADERS in
    order, then an exact Content-Length and BODY. A header that could split the request is refused."""
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if any(c in value or c in name for c in "\r\n\0"):
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join([*lines, "", ""]).encode("latin-1") + body


class Connection:
    """One keep-alive connection to one peer, opened by OPEN on first use and kept until ``close()``.

    It carries one exchange at a time (callers that share it take turns). WHERE names the peer
    in errors ("192.0.2.1:80", "the cloud (wap.tplinkcloud.com)"); LIMIT bounds a reply's body.
    """

    def __init__(self, where: str, open: Callable[[float], Awaitable[Streams]], *, limit: int) -> None:
        self.where = where
        self._open = open
        self._limit = limit
        self._streams: Streams | None = None

    async def exchange(self, request: bytes, timeout: float) -> Reply:
        """Send REQUEST and return the reply, all within TIMEOUT seconds.

        No reply in time → Timeout; a reply that breaks HTTP or the bound → ProtocolError;
        the connection failing → NetworkError, or whatever OPEN raises.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            # A peer that closes its connections after each reply (a P100, or the cloud's idle
            # timeout) may close the one a request was just written to: the request was never
            # answered, so it goes once more, on a new connection, within the same timeout.
            for _ in range(2):
                if self._streams is None or self._streams[0].at_eof():
                    self._drop()
                    self._streams = await self._open(deadline - loop.time())
                try:
                    reply, keep = await asyncio.wait_for(self._round_trip(request), deadline - loop.time())
                except _Dropped:
                    self._drop()
                    continue
                except asyncio.TimeoutError:
                    raise Timeout(f"{self.where} did not answer within {timeout:g} s") from None
                if not keep:
                    await self.close()
                return reply
            raise NetworkError(f"{self.where} closed the connection twice without answering")
        except BaseException:  # the connection is in an unknown state: never reuse it
            self._drop()
            raise

    async def close(self) -> None:
        """Close the connection (a later exchange opens a new one)."""
        if self._streams is None:
            return
        writer = self._streams[1]
        self._streams = None
        writer.close()
        with suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1)

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
            return await _read_reply(reader, first, self._limit)
        except BadReply as exc:
            raise ProtocolError(f"{self.where} {exc}") from None
        except asyncio.IncompleteReadError:
            raise ProtocolError(f"{self.where} closed the connection mid-reply") from None
        except asyncio.LimitOverrunError:  # a line past the stream's limit (64 KiB)
            raise ProtocolError(f"{self.where} sent an overlong line") from None
        except OSError as exc:
            raise NetworkError(f"connection to {self.where} failed ({exc.strerror or exc})") from None

    def _drop(self) -> None:
        if self._streams is not None:
            self._streams[1].transport.abort()
            self._streams = None


def too_large(limit: int) -> BadReply:
    size = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit // 1024} KiB"
    return BadReply(f"sent a reply larger than {size}")


async def _read_reply(reader: asyncio.StreamReader, first: bytes, limit: int) -> tuple[Reply, bool]:
    """The reply whose first byte is FIRST, the rest on READER; whether the connection stays open."""
    status_line = first + await reader.readuntil(b"\n")
    version, _, rest = status_line.rstrip(b"\r\n").partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or not (code.isdigit() and rest[3:4] in (b"", b" ")):
        raise BadReply("sent a reply that is not HTTP/1.x")
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
            raise BadReply("sent a reply in a transfer coding other than chunked")
        body = await _chunked(reader, limit)
    elif lengths:
        body = await reader.readexactly(_content_length(lengths, limit))
    else:
        body, keep = await _until_close(reader, limit), False
    return reply._replace(body=body), keep


async def _headers(reader: asyncio.StreamReader, budget: int) -> tuple[tuple[str, str], ...]:
    """Header lines up to the blank line, within BUDGET bytes and MAX_HEADERS lines."""
    headers: list[tuple[str, str]] = []
    while (line := await reader.readuntil(b"\n")).rstrip(b"\r\n"):
        budget -= len(line)
        if budget < 0 or len(headers) == MAX_HEADERS:
            raise BadReply(f"sent more than {MAX_HEADERS} headers or {MAX_HEAD // 1024} KiB of them")
        name, sep, value = line.rstrip(b"\r\n").partition(b":")
        text = value.strip(b" \t")
        if not sep or not name or name != name.strip() or any(c < 32 and c != 9 for c in text):
            raise BadReply("sent a malformed header line")
        headers.append((name.decode("latin-1").lower(), text.decode("latin-1")))
    return tuple(headers)


def _content_length(values: list[str], limit: int) -> int:
    value = values[0].strip()
    if len(set(values)) != 1 or not (value.isascii() and value.isdigit()):
        raise BadReply("sent a malformed Content-Length")
    digits = value.lstrip("0")
    if len(digits) > len(str(limit)) or int(digits or "0") > limit:
        raise too_large(limit)
    return int(digits or "0")


async def _chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    """A chunked body, then its trailer, which is read and dropped."""
    body = bytearray()
    while True:
        size_field = (await reader.readuntil(b"\n")).split(b";", 1)[0].strip()
        if not size_field or len(size_field) > 8 or not _HEX.issuperset(size_field):
            raise BadReply("sent a malformed chunk size")
        size = int(size_field, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise too_large(limit)
        body += await reader.readexactly(size)
        if (await reader.readuntil(b"\n")).rstrip(b"\r\n"):
            raise BadReply("sent a chunk longer than its size")
    await _headers(reader, MAX_HEAD)
    return bytes(body)


async def _until_close(reader: asyncio.StreamReader, limit: int) -> bytes:
    """A body without a length: all the peer sends until it closes the connection."""
    body = bytearray()
    while chunk := await reader.read(65536):
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)
