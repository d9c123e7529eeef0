"""tpcloud's secrets as one item in the OS keyring.

Every keyring call is a round trip (with Secret Service: a new D-Bus connection, a search and a
key exchange), so all the secrets of a service live in one item, username ``secrets``, holding one
JSON object of names to strings: a command reads it once. A change reads the item again and writes
it back under a file lock in the config folder, so two jobs renewing the token at the same moment
lose no update. Older versions kept one item per name; the first access that finds no single item
moves those into it and deletes them, so an upgrade keeps the user logged in.

Calls here may block on the keyring for ever (a locked collection waiting for a prompt): the
caller, :class:`tpcloud.secrets.SecretStore`, runs each of them under its time limit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tpcloud.errors import SecretStoreError
from tpcloud.fsutil import FileLock

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    # What an update sets (None: deletes), or a function of the entries as they are now giving it.
    Changes = Mapping[str, str | None] | Callable[[dict[str, str]], Mapping[str, str | None]]

ITEM = "secrets"


def _changed(entries: Mapping[str, str], values: Mapping[str, str | None]) -> dict[str, str]:
    """ENTRIES with each name of VALUES set to its value, or removed for None."""
    kept = {name: value for name, value in entries.items() if name not in values}
    return {**kept, **{name: value for name, value in values.items() if value is not None}}


class KeyringStore:
    """The one item of each service in BACKEND; OLD_NAMES are the items of the old layout."""

    def __init__(
        self, backend: "KeyringBackend", *, lock: Path, old_names: tuple[str, ...], log: Callable[[str], None]
    ) -> None:
        self.backend = backend
        self._lock = lock
        self._old_names = old_names
        self._log = log

    def entries(self, service: str) -> dict[str, str]:
        found = self._item(service)
        if found is not None:
            return found
        with FileLock(self._lock):
            return self._current(service)

    def update(self, service: str, values: "Changes") -> dict[str, str]:
        """Set (None: delete) several names in one write; the entries as they are now."""
        with FileLock(self._lock):
            before = self._current(service)
            after = _changed(before, values(dict(before)) if callable(values) else values)
            if after != before:
                self._write(service, after)
        return after

    def clear(self, service: str) -> None:
        """Delete the item, and any item of the old layout left behind."""
        with FileLock(self._lock):
            for username in (ITEM, *self._old_names):
                self._delete(service, username)

    def _current(self, service: str) -> dict[str, str]:
        """The entries, with the lock held: the item, or the old layout moved into it."""
        found = self._item(service)
        return self._upgrade(service) if found is None else found

    def _upgrade(self, service: str) -> dict[str, str]:
        old = {}
        for name in self._old_names:
            value = self.backend.get_password(service, name)
            if value is not None:
                old[name] = value
        if old:
            self._write(service, old)
            for name in old:
                self._delete(service, name)
            self._log(f"moved {len(old)} secrets from one OS keyring item each into the item {service}/{ITEM}")
        return old

    def _item(self, service: str) -> dict[str, str] | None:
        raw = self.backend.get_password(service, ITEM)
        if raw is None:
            return None
        try:
            entries = json.loads(raw)
        except ValueError:
            entries = None
        if not (isinstance(entries, dict) and all(isinstance(v, str) for v in entries.values())):
            raise SecretStoreError(
                f"the OS keyring item {service}/{ITEM} is unreadable (not a JSON object of names to strings); "
                "it was left untouched",
                hint="`tpcloud logout` deletes it; then `tpcloud login`",
            )
        return entries

    def _write(self, service: str, entries: Mapping[str, str]) -> None:
        if entries:
            self.backend.set_password(service, ITEM, json.dumps(entries, sort_keys=True, separators=(",", ":")))
        else:
            self._delete(service, ITEM)

    def _delete(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        with contextlib.suppress(PasswordDeleteError):  # deleting what is not there is fine
            self.backend.delete_password(service, username)
