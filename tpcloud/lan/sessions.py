"""KLAP and AES sessions kept between commands, so the next one skips the handshake.

A session's key material opens the device as well as the password does until it expires, so it
lives in the secret store (never in the cache), under one name holding every device's session
keyed by wire and address; ``logout`` removes it with the other secrets. Expired sessions are
dropped whenever the store is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tpcloud.redact import Redactor
    from tpcloud.secrets import SecretStore

NAME = "lan_sessions"
# The fields of a transport's exported session that must never be shown.
_SECRET_FIELDS = ("key", "iv", "iv_base", "sig", "token")


class SessionStore:
    """Saved sessions by device (``"klap 192.0.2.10:80"``), as the transports export them."""

    def __init__(self, secrets: SecretStore, redactor: Redactor, *, clock: Callable[[], float] = time.time) -> None:
        self._secrets = secrets
        self._redactor = redactor
        self._clock = clock

    def load(self, device: str) -> dict[str, Any] | None:
        """The saved session of DEVICE, if any; its secrets are masked in everything printed."""
        state = _parsed(self._secrets.get(NAME)).get(device)
        if not isinstance(state, dict):
            return None
        self._mask(state)
        return state

    def save(self, changes: Mapping[str, dict[str, Any] | None]) -> None:
        """Keep these devices' sessions (None forgets one) beside the other devices' live ones.

        The change is made to the sessions as stored at that moment, in one step, so a session
        another command saved meanwhile for another device survives.
        """
        for state in changes.values():
            if state is not None:
                self._mask(state)
        now = self._clock()

        def merged(raw: str | None) -> str | None:
            sessions = {**_parsed(raw), **changes}
            live = {device: state for device, state in sessions.items() if _expires_at(state) > now}
            return json.dumps(live, separators=(",", ":")) if live else None

        self._secrets.modify(NAME, merged)

    def _mask(self, state: dict[str, Any]) -> None:
        cookie = state.get("cookie")
        values = [state.get(name) for name in _SECRET_FIELDS]
        if isinstance(cookie, list) and len(cookie) == 2:
            values.append(cookie[1])
        self._redactor.add(*(v for v in values if isinstance(v, str)))


def _parsed(raw: str | None) -> dict[str, Any]:
    """Every saved session in RAW; a value that is not readable counts as none."""
    try:
        sessions = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return sessions if isinstance(sessions, dict) else {}


def _expires_at(state: Any) -> float:
    try:
        return float(state["expires_at"])
    except (KeyError, TypeError, ValueError):
        return 0.0
