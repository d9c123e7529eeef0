"""TPAP: what current Tapo firmware advertises (L530 1.4.2, L900 1.4.3, P304M 1.4.0+, P410M),
spoken to over KLAP v2.

TPAP itself is a password-authenticated key exchange (SPAKE over elliptic curves) that tpcloud
does not speak. But devices advertising it still answer KLAP v2 while "Third-Party Compatibility"
is on in the Tapo app (home-assistant-tapo-p100#970: an L530 on 1.4.2 works mapped to KLAP v2;
python-kasa #1592: a KP125M advertising TPAP reads fine over KLAP; go-tapo-exporter#5: a P304M on
1.4.0 refuses KLAP with HTTP 403 until the setting is switched on). So this wire is a KLAP v2
transport whose refusal says which setting to switch on, instead of "wrong password".
"""

from __future__ import annotations

from typing import Any

from tpcloud.errors import AuthError, HandshakeRefused

HINT = (
    'switch on "Third-Party Compatibility" in the Tapo app (Me → Third-Party Services); after a '
    "firmware update, switch it off and on again"
)


class TpapTransport:
    """A TPAP device, reached over KLAP v2."""

    def __init__(self, host: str, port: int = 80, *, credentials: tuple[str, str] | None, timeout: float) -> None:
        from tpcloud.lan.klap import KlapTransport

        self.host = host
        self.port = port
        self._klap = KlapTransport(host, port, credentials=credentials, version=2, timeout=timeout)

    async def send(self, payload: bytes) -> bytes:
        try:
            return await self._klap.send(payload)
        except (HandshakeRefused, AuthError) as exc:
            raise AuthError(
                f"{self.host} speaks TPAP, and refused KLAP, which tpcloud reaches it with ({exc.message})",
                hint=HINT,
            ) from None

    async def close(self) -> None:
        await self._klap.close()

    def export_session(self) -> dict[str, Any] | None:
        return self._klap.export_session()

    def restore_session(self, state: dict[str, Any]) -> bool:
        return self._klap.restore_session(state)
