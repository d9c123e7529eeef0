"""Open LAN links to devices, one per address, for the life of one command.

The wire for a device comes from a table (``WIRES``) keyed by what discovery called it. A link
also owns what every LAN request carries whatever the wire: the SMART envelope with this run's
terminal UUID, the JSON in and out, and the ``-v`` log lines.

A command may talk to a device more than once (``toggle`` reads, then writes); KLAP and AES
handshakes are costly, so the transport made for the first request serves the next ones. Their
sessions also outlive the command: a saved one is resumed when the transport is made, and the
session as it stands at the end (or its absence, when the device refused it) is saved again.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from tpcloud.errors import DeviceError, TpcloudError
from tpcloud.lan.transport import Transport, json_object

if TYPE_CHECKING:
    from tpcloud.lan.discovery import Found
    from tpcloud.lan.sessions import SessionStore



def _xor(found: "Found", timeout: float, credentials: Any) -> Transport:
    from tpcloud.lan.xor import XorTransport

    return XorTransport(found.host, found.port, timeout=timeout)


def _klap(found: "Found", timeout: float, credentials: Any) -> Transport:
    from tpcloud.lan.klap import KlapTransport

    return KlapTransport(found.host, found.port, credentials=credentials, version=found.version, timeout=timeout)


def _aes(found: "Found", timeout: float, credentials: Any) -> Transport:
    from tpcloud.lan.aes import AesTransport

    return AesTransport(
        found.host, found.port, credentials=credentials, login_version=found.version or 1, timeout=timeout
    )


def _tpap(found: "Found", timeout: float, credentials: Any) -> Transport:
    from tpcloud.lan.tpap import TpapTransport

    return TpapTransport(found.host, found.port, credentials=credentials, timeout=timeout)


class Wire(NamedTuple):
    """How to make a wire's transport, and whether it speaks HTTP (and keeps a session)."""

    make: Callable[..., Transport]
    over_http: bool


WIRES: dict[str, Wire] = {
    "xor": Wire(_xor, False), "klap": Wire(_klap, True), "aes": Wire(_aes, True), "tpap": Wire(_tpap, True),
}


def new_terminal_uuid() -> str:
    """A terminal id in the form the apps send: base64 of an MD5 over a random UUID."""
    import hashlib
    import uuid

    return base64.b64encode(hashlib.md5(uuid.uuid4().bytes).digest()).decode("ascii")


class LanLinks:
    def __init__(
        self,
        *,
        credentials: Callable[[], tuple[str, str] | None],
        sessions: Callable[[], "SessionStore"],
        log: Callable[[str], None],
    ) -> None:
        self._credentials = credentials
        self._sessions = sessions
        self._log = log
        self._terminal_uuid = ""
        self._open: dict[tuple[str, int, str], Transport] = {}
        # What the store held for each KLAP/AES transport when it was made, to save only changes.
        self._resumed: dict[tuple[str, int, str], dict[str, Any] | None] = {}

    async def send(self, found: "Found", request: dict[str, Any], *, dialect: str, timeout: float) -> dict[str, Any]:
        """Send REQUEST (JSON of DIALECT) to the device FOUND describes; its reply, parsed."""
        if dialect == "smart":
            from tpcloud.dialects.smart import envelope

            if not self._terminal_uuid:
                self._terminal_uuid = new_terminal_uuid()
            request = envelope(request, self._terminal_uuid)
        payload = json.dumps(request, separators=(",", ":")).encode()
        where = f"{found.wire} {found.host}:{found.port}"
        self._log(f"> {where} {payload.decode()}")
        raw = await self._transport(found, timeout).send(payload)
        self._log(f"< {where} {raw.decode(errors='replace')}")
        return json_object(raw, f"reply from {found.host}")

    def _transport(self, found: "Found", timeout: float) -> Transport:
        """The open transport to FOUND, or a new one (resuming its saved session)."""
        key = (found.host, found.port, found.wire)
        if key in self._open:
            return self._open[key]
        wire = WIRES.get(found.wire)
        if wire is None:
            raise DeviceError(
                f"the device at {found.host} uses {found.encrypt_type or 'an'} encryption, which tpcloud does not support yet"
            )
        transport = self._open[key] = wire.make(found, timeout, self._credentials() if wire.over_http else None)
        if not wire.over_http:
            return transport
        saved = self._resumed[key] = self._sessions().load(_session_name(key))
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
                self._sessions().save(changes)
        except TpcloudError as exc:  # the command itself worked; the next one only handshakes again
            self._log(f"LAN sessions not saved: {exc}")
        finally:
            for transport in self._open.values():
                await transport.close()
            self._open.clear()


def _session_name(key: tuple[str, int, str]) -> str:
    host, port, wire = key
    return f"{wire} {host}:{port}"
