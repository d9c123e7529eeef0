"""What every LAN wire is to the code above it, and what the wires share: the TCP connection,
JSON replies, and the HTTP wires' session cookie.

A wire (XOR, KLAP, AES) is a :class:`Transport`: it sends one request of the device's own JSON
dialect and returns the raw JSON reply, and can hand its session over to a later command. The
links (``links.py``) pick one per device from a table and never look inside.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Protocol

from tpcloud.errors import DeviceUnreachable, ProtocolError, WireRefused

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


class Transport(Protocol):
    """One device's wire: bytes of its JSON dialect in, the bytes of its JSON reply out."""

    host: str
    port: int

    async def send(self, payload: bytes) -> bytes:
        """Deliver PAYLOAD and return the device's reply, a JSON object (checked as such)."""

    async def close(self) -> None:
        """Forget the session and close the connection to the device, if one is open."""

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


def session_cookie(set_cookies: list[str]) -> tuple[tuple[str, str] | None, float]:
    """The session cookie (TP_SESSIONID or SESSIONID) in a reply's Set-Cookie headers, and when to
    stop using it (epoch seconds).

    Devices send ``TP_SESSIONID=..;TIMEOUT=86400`` in one header, which cookie jars read as an
    attribute and drop, so the header is parsed here.
    """
    pairs: dict[str, str] = {}
    for header in set_cookies:
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


async def open_stream(host: str, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to a device within TIMEOUT seconds: refused → WireRefused (its address is
    worth finding again), any other failure → DeviceUnreachable."""
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else (exc.strerror or type(exc).__name__)
        kind = WireRefused if isinstance(exc, ConnectionRefusedError) else DeviceUnreachable
        raise kind(f"cannot connect to {host}:{port} ({reason})") from None
