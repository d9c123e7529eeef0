"""Open LAN links to devices, one per address, for the life of one command.

A command may talk to a device more than once (``toggle`` reads, then writes); KLAP and AES
handshakes are costly, so the transport made for the first request serves the next ones. Their
sessions also outlive the command: a saved one is resumed when the transport is made, and the
session as it stands at the end (or its absence, when the device refused it) is saved again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tpcloud.errors import DeviceError, TpcloudError

if TYPE_CHECKING:
    import httpx

    from tpcloud.lan.discovery import Found
    from tpcloud.lan.sessions import SessionStore


class LanLinks:
    def __init__(
        self,
        *,
        credentials: Callable[[], tuple[str, str] | None],
        http_client: Callable[[], "httpx.AsyncClient"],
        sessions: "SessionStore",
        log: Callable[[str], None],
    ) -> None:
        self._credentials = credentials
        self._http_client = http_client
        self._sessions = sessions
        self._log = log
        self._http: "httpx.AsyncClient | None" = None
        self._open: dict[tuple[str, int, str], Any] = {}
        # What the store held for each KLAP/AES transport when it was made, to save only changes.
        self._resumed: dict[tuple[str, int, str], dict[str, Any] | None] = {}

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
        transport: Any
        if found.wire == "klap":
            from tpcloud.lan.klap import KlapTransport

            transport = KlapTransport(
                found.host, found.port, credentials=self._credentials(), version=found.version,
                client=self._http, timeout=timeout,
            )
        else:
            from tpcloud.lan.aes import AesTransport

            transport = AesTransport(
                found.host, found.port, credentials=self._credentials(), login_version=found.version or 1,
                client=self._http, timeout=timeout,
            )
        key = (found.host, found.port, found.wire)
        saved = self._resumed[key] = self._sessions.load(_session_name(key))
        if saved is not None:
            transport.restore_session(saved)  # a stale or mismatched one is refused and replaced
        return transport

    async def close(self) -> None:
        """Save the sessions that changed, then close every transport."""
        changes = {}
        for key, saved in self._resumed.items():
            state = self._open[key].export_session()
            if state != saved:
                changes[_session_name(key)] = state
        self._resumed.clear()
        try:
            if changes:
                self._sessions.save(changes)
        except TpcloudError as exc:  # the command itself worked; the next one only handshakes again
            self._log(f"LAN sessions not saved: {exc}")
        finally:
            for transport in self._open.values():
                await transport.close()
            self._open.clear()
            if self._http is not None:
                await self._http.aclose()
                self._http = None


def _session_name(key: tuple[str, int, str]) -> str:
    host, port, wire = key
    return f"{wire} {host}:{port}"
