"""KLAP and AES sessions kept between commands, so the next one skips the handshake.

A session's key material opens the device as well as the password does until it expires, so it
lives in the secret store (never in the cache), under one name holding every device's session
keyed by wire and address; ``logout`` removes it with the other secrets. Expired sessions are
dropped whenever the store is written.

A KLAP session's sequence number moves with every request, and it is no secret: it travels in
the clear, in the URL. So a change of that number alone goes to a small cache file
(``counters``), keyed by device and by a fingerprint of the session it belongs to, and the secret
store is written only when a session begins or ends: writing it costs a keyring round trip, or a
fresh scrypt derivation when the file store is encrypted. A lost counter file only means a
sequence number the device has seen; it refuses it, and the transport handshakes again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpcloud.fsutil import atomic_write

if TYPE_CHECKING:
    from tpcloud.redact import Redactor
    from tpcloud.secrets import SecretStore

NAME = "lan_sessions"
# The fields of a transport's exported session that must never be shown.
_SECRET_FIELDS = ("key", "iv", "iv_base", "sig", "token")


class SessionStore:
    """Saved sessions by device (``"klap 192.0.2.10:80"``), as the transports export them; their
    sequence numbers also in COUNTERS (a cache file), when given."""

    def __init__(
        self, secrets: SecretStore, redactor: Redactor, *, counters: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = secrets
        self._redactor = redactor
        self._counters = counters
        self._clock = clock
        # What load() returned, by device: a later change of the sequence number alone is no
        # change for the secret store.
        self._loaded: dict[str, dict[str, Any]] = {}
        self._counts: dict[str, Any] | None = None  # the counters file, read once for every load

    def load(self, device: str) -> dict[str, Any] | None:
        """The saved session of DEVICE, if any; its secrets are masked in everything printed."""
        state = _parsed(self._secrets.get(NAME)).get(device)
        if not isinstance(state, dict):
            return None
        self._mask(state)
        counter = self._read_counters().get(device)
        if "seq" in state and isinstance(counter, dict) and counter.get("session") == _fingerprint(state):
            state["seq"] = counter.get("seq")
        self._loaded[device] = dict(state)
        return state

    def save(self, changes: Mapping[str, dict[str, Any] | None]) -> None:
        """Keep these devices' sessions (None forgets one) beside the other devices' live ones.

        The change is made to the sessions as stored at that moment, in one step, so a session
        another command saved meanwhile for another device survives. Sequence numbers go to the
        counters, and a session whose sequence number is all that changed goes nowhere else.
        """
        secret = {device: state for device, state in changes.items() if not self._only_counted(device, state)}
        for state in secret.values():
            if state is not None:
                self._mask(state)
        now = self._clock()

        def merged(raw: str | None) -> str | None:
            sessions = {**_parsed(raw), **secret}
            live = {device: state for device, state in sessions.items() if _expires_at(state) > now}
            return json.dumps(live, separators=(",", ":")) if live else None

        if secret:
            self._secrets.modify(NAME, merged)
        self._count(changes, now)

    def _only_counted(self, device: str, state: dict[str, Any] | None) -> bool:
        before = self._loaded.get(device)
        return (
            self._counters is not None and state is not None and before is not None and "seq" in state
            and {**state, "seq": None} == {**before, "seq": None}
        )

    def _count(self, changes: Mapping[str, dict[str, Any] | None], now: float) -> None:
        """Write the sequence numbers of CHANGES to the counters (keeping live ones of others)."""
        if self._counters is None or not any(state is None or "seq" in state for state in changes.values()):
            return
        counters = self._read_counters(fresh=True)  # another command may have counted meanwhile
        for device, state in changes.items():
            if state is None or "seq" not in state:
                counters.pop(device, None)
            else:
                counters[device] = {"session": _fingerprint(state), "seq": state["seq"],
                                    "expires_at": _expires_at(state)}
        live = self._counts = {device: c for device, c in counters.items() if _expires_at(c) > now}
        try:
            atomic_write(self._counters, json.dumps(live, separators=(",", ":")).encode())
        except OSError:
            pass  # the next command's device refuses the old number, and a handshake follows

    def _read_counters(self, *, fresh: bool = False) -> dict[str, Any]:
        """The counters, as read once per command (FRESH: as they are now)."""
        if self._counts is None or fresh:
            try:
                text = self._counters.read_text(encoding="utf-8") if self._counters else ""
            except (OSError, UnicodeDecodeError):
                text = ""
            self._counts = _parsed(text)
        return dict(self._counts)

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


def _fingerprint(state: dict[str, Any]) -> str:
    """Which session a counter belongs to, without a trace of its key: a short hash of it."""
    return hashlib.sha256(str(state.get("key")).encode()).hexdigest()[:16]


def _expires_at(state: Any) -> float:
    try:
        return float(state["expires_at"])
    except (KeyError, TypeError, ValueError):
        return 0.0
