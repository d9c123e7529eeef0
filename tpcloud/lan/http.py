"""HTTP to devices on the LAN: what the KLAP and AES wires need, on tpcloud's own HTTP/1.1.

Devices speak plain HTTP, so nothing comes from the environment: no proxies, no TLS. One
keep-alive connection per device carries a POST at a time, with the device's session cookie.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from tpcloud import http11
from tpcloud.http11 import Reply
from tpcloud.lan.transport import open_stream

__all__ = ["DeviceHttp", "Reply", "MAX_REPLY"]

# A device's reply is a few KiB (a hub with many children tens); past this it is not a device.
MAX_REPLY = 1024 * 1024


class DeviceHttp:
    """One device's HTTP: a keep-alive connection, opened on first use and kept until ``close()``.

    One exchange at a time runs on it; another waits its turn.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._where = f"{host}:{port}"
        self._connection = http11.Connection(self._where, lambda timeout: open_stream(host, port, timeout), limit=MAX_REPLY)
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
        headers = [("Host", self._where), ("Accept", "*/*")]
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        if cookie is not None:
            headers.append(("Cookie", f"{cookie[0]}={cookie[1]}"))
        target = f"{path}?{urlencode(params)}" if params else path
        async with self._turn:
            return await self._connection.exchange(http11.request("POST", target, headers, body), timeout)

    async def close(self) -> None:
        """Close the connection (a later post opens a new one)."""
        await self._connection.close()
