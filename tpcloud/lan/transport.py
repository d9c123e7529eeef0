"""What every LAN wire is to the code above it, and the HTTP pieces the HTTP wires share.

A wire (XOR, KLAP, AES) is a :class:`Transport`: it sends one request of the device's own JSON
dialect and returns the raw JSON reply, and can hand its session over to a later command. The
links (``links.py``) pick one per device from a table and never look inside.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from tpcloud.errors import DeviceUnreachable, NetworkError, ProtocolError, Timeout, WireRefused
from tpcloud.httpio import innermost, read_bounded

if TYPE_CHECKING:
    import httpx

# What to tell a user whose credentials a KLAP or AES device refused.
AUTH_HINT = (
    "e-mail and password are case-sensitive; newer firmware also needs "
    '"Third-Party Compatibility" switched on in the Kasa/Tapo app'
)
# How long a device keeps a session when its cookie does not say.
DEFAULT_SESSION_LIFE = 86400
# Re-handshake this long before the device's own deadline so a request never races it.
EXPIRY_MARGIN = 20 * 60
# How a device refuses a handshake of a wire it does not speak (any more): no such path (404),
# or the request refused outright (400, 403). A KLAP handshake2 403 is not one: that is the
# credentials. An AES device that now speaks KLAP answers 1003 in JSON instead.
HANDSHAKE_REFUSED = (400, 403, 404)
# A device's reply is a few KiB (a hub with many children tens); past this it is not a device.
MAX_REPLY = 1024 * 1024
_BODY_HEADERS = ("content-length", "content-encoding", "transfer-encoding")


class Transport(Protocol):
    """One device's wire: bytes of its JSON dialect in, the bytes of its JSON reply out."""

    host: str
    port: int

    async def send(self, payload: bytes) -> bytes:
        """Deliver PAYLOAD and return the device's reply, a JSON object (checked as such)."""

    async def close(self) -> None:
        """Forget the session; a shared HTTP client belongs to whoever made the transport."""

    def export_session(self) -> dict[str, Any] | None:
        """The live session as plain data for the secret store, or None (nothing to keep)."""

    def restore_session(self, state: dict[str, Any]) -> bool:
        """Adopt a session exported earlier; False, changing nothing, when it does not fit."""


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse a device's JSON reply, which is always an object; anything else is a protocol error."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is JSON but not an object")
    return value


def session_cookie(response: httpx.Response) -> tuple[tuple[str, str] | None, float]:
    """The session cookie (TP_SESSIONID or SESSIONID) and when to stop using it (epoch seconds).

    Devices send ``TP_SESSIONID=..;TIMEOUT=86400`` in one header, which cookie jars read as an
    attribute and drop, so the header is parsed here.
    """
    pairs: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep:
                pairs.setdefault(name.strip().upper(), value.strip())
    cookie = next(((name, pairs[name]) for name in ("TP_SESSIONID", "SESSIONID") if pairs.get(name)), None)
    try:
        life = int(pairs.get("TIMEOUT", DEFAULT_SESSION_LIFE))
    except ValueError:
        life = DEFAULT_SESSION_LIFE
    if life <= 0:
        life = DEFAULT_SESSION_LIFE
    return cookie, time.time() + life - min(EXPIRY_MARGIN, life / 2)


async def http_post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    timeout: float,
    cookie: tuple[str, str] | None = None,
    params: dict[str, str] | None = None,
    content_type: str | None = None,
) -> httpx.Response:
    """POST with an exact Content-Length, our own cookie header and a bound on the whole exchange.

    Transport failures become tpcloud errors: no connection → DeviceUnreachable, no answer in time →
    Timeout, anything else on the wire → NetworkError. The body is read with a bound (MAX_REPLY).
    """
    import httpx

    headers = {"Content-Length": str(len(body))}
    if cookie is not None:
        headers["Cookie"] = f"{cookie[0]}={cookie[1]}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    where = httpx.URL(url).host

    async def exchange() -> httpx.Response:
        async with client.stream("POST", url, content=body, headers=headers, params=params, timeout=timeout) as streamed:
            content = await read_bounded(streamed, MAX_REPLY)
        if content is None:
            raise ProtocolError(f"{where} sent a reply larger than {MAX_REPLY // 1024} KiB")
        # The body is already decoded: keep only the headers that still describe it.
        kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _BODY_HEADERS]
        return httpx.Response(streamed.status_code, headers=kept, content=content)

    async def exchange_again_if_dropped() -> httpx.Response:
        # A device that closes its connections after each reply (a P100; python-kasa retries
        # for it) may close the one a request was just written to: the request was never
        # answered (the connection ended, or was reset, before a reply), so it is sent once
        # more, on a new connection.
        try:
            return await exchange()
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            return await exchange()

    try:
        response = await asyncio.wait_for(exchange_again_if_dropped(), timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        kind = WireRefused if isinstance(innermost(exc), ConnectionRefusedError) else DeviceUnreachable
        raise kind(f"cannot connect to {where}") from None
    except (httpx.TimeoutException, asyncio.TimeoutError):
        raise Timeout(f"{where} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise NetworkError(f"HTTP exchange with {where} failed ({type(exc).__name__})") from None
    return response


async def open_stream(host: str, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to a device within TIMEOUT seconds: refused → WireRefused (its address is
    worth finding again), any other failure → DeviceUnreachable."""
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else (exc.strerror or type(exc).__name__)
        kind = WireRefused if isinstance(exc, ConnectionRefusedError) else DeviceUnreachable
        raise kind(f"cannot connect to {host}:{port} ({reason})") from None
