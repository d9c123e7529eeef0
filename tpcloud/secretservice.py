"""The Secret Service (GNOME Keyring, KeePassXC, KWallet's bridge) spoken to directly, when a
login remembered it as the OS keyring.

keyring's own backend for it costs every command about 30 ms of importing keyring (its backend
module pulls in jaraco.context, importlib_metadata and urllib.request) and a second D-Bus
connection to ask whether the service is running. This speaks to it through secretstorage, the
library keyring's backend uses itself, on one connection, and reads and writes items exactly as
that backend does (the default collection; attributes ``service`` and ``username``; its label and
``application``), so each finds what the other wrote: a full probe (at ``login``, or when this
fails) still goes through keyring.
"""

from __future__ import annotations

from typing import Any

# The backend a login remembers for the Secret Service, which this stands in for.
KEYRING_BACKEND = "keyring.backends.SecretService.Keyring"
# What keyring's backend marks its items with.
APPLICATION = "Python keyring library"


class SecretService:
    """get/set/delete_password as keyring's SecretService backend, on one D-Bus connection.

    Made only where the service answers on the session bus (else RuntimeError, as keyring's
    backend reports it). Every call may wait on a prompt; the caller bounds it with a timeout.
    """

    name = "SecretService Keyring"

    def __init__(self) -> None:
        import secretstorage

        self._connection = secretstorage.dbus_init()
        if not secretstorage.check_service_availability(self._connection):
            self._connection.close()
            raise RuntimeError("the Secret Service daemon is neither running nor activatable through D-Bus")
        self._collection: Any = None

    def get_password(self, service: str, username: str) -> str | None:
        for item in self._items(service, username):
            if item.is_locked():
                item.unlock()
                if item.is_locked():
                    _locked("the item")
            return item.get_secret().decode("utf-8")  # type: ignore[no-any-return]
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        attributes = {"application": APPLICATION, "service": service, "username": username}
        self._unlocked().create_item(f"Password for '{username}' on '{service}'", attributes, password, replace=True)

    def delete_password(self, service: str, username: str) -> None:
        """Delete the item, if there is one (keyring's backend raises when there is none)."""
        for item in self._items(service, username):
            item.delete()
            return

    def _items(self, service: str, username: str) -> Any:
        return self._unlocked().search_items({"service": service, "username": username})

    def _unlocked(self) -> Any:
        """The default collection, unlocked (asking the service to, once)."""
        if self._collection is None:
            import secretstorage

            collection = secretstorage.get_default_collection(self._connection)
            if collection.is_locked():
                collection.unlock()
                if collection.is_locked():  # nobody answered the prompt, or it was dismissed
                    _locked("the collection")
            self._collection = collection
        return self._collection


def _locked(what: str) -> None:
    """Raise keyring's own KeyringLocked, which the caller turns into its one-line error."""
    from keyring.errors import KeyringLocked

    raise KeyringLocked(f"failed to unlock {what}")
