"""Open LAN links to devices, one per address, for the life of one command.

A command may talk to a device more than once (``toggle`` reads, then writes); KLAP and AES
handshakes are costly, so the transport made for the first request serves the next ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tpcloud.errors import DeviceError

if TYPE_CHECKING:
    import httpx

    from tpcloud.lan.discovery import Found


class LanLinks:
    def __init__(
        self,
        *,
        credentials: Callable[[], tuple[str, str] | None],
        http_client: Callable[[], "httpx.AsyncClient"],
    ) -> None:
        self._credentials = credentials
        self._http_client = http_client
        self._http: "httpx.AsyncClient | None" = None
        self._open: dict[tuple[str, int, str], Any] = {}

    async def request(self, found: "Found", payload: bytes, *, timeout: float) -> bytes:
        """Carry PAYLOAD (JSON of the device's dialect) to the device FOUND describes."""
        key = (found.host, found.port, found.wire)
        transport = self._open.get(key)
        if transport is None:
            transport = self._open[key] = self._transport(found, timeout)
        return await transport.request(payload)

    def _transport(self, found: "Found", timeout: float) -> Any:
        if found.wire == "xor":
            from tpcloud.lan.xor import XorTransport

            return XorTransport(found.host, found.port, timeout=timeout)
        if found.wire not in ("klap", "aes"):
            raise DeviceError(
                f"the device at {found.host} uses {found.encrypt_type or 'an'} encryption, which tpcloud does not support yet"
            )
        if self._http is None:
            self._http = self._http_client()
        if found.wire == "klap":
            from tpcloud.lan.klap import KlapTransport

            return KlapTransport(
                found.host, found.port, credentials=self._credentials(), version=found.version,
                client=self._http, timeout=timeout,
            )
        from tpcloud.lan.aes import AesTransport

        return AesTransport(
            found.host, found.port, credentials=self._credentials(), login_version=found.version or 1,
            client=self._http, timeout=timeout,
        )

    async def close(self) -> None:
        for transport in self._open.values():
            await transport.close()
        self._open.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
