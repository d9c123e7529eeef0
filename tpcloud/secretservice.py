"""The Secret Service (GNOME Keyring, KeePassXC, KWallet's bridge) spoken to directly, when a
login remembered it as the OS keyring.

keyring's own backend for it costs every command about 30 ms of importing keyring (its backend
module pulls in jaraco.context, importlib_metadata and urllib.request) and a second D-Bus
connection to ask whether the service is running. This speaks to it on one connection, and reads
and writes items exactly as that backend does (the default collection; attributes ``service`` and
``username``; its label and ``application``), so each finds what the other wrote: a full probe
(at ``login``, or when this fails) still goes through keyring.

A read, which every command that needs a secret makes, goes straight over jeepney in three calls
(search the default collection, open a "plain" session, get the secret): ~19 ms in a new
process, where secretstorage took ~48 ms (it imports cryptography for its Diffie-Hellman session,
and asks for each property on its way). "plain" hands the secret over the user's own session
bus unencrypted; any program of the user's could ask the service for it anyway. Whatever the
short way cannot settle (a locked item or collection, which may need a prompt; no default
collection; a service that refuses "plain") goes through secretstorage, as do writes.
"""

from __future__ import annotations

from typing import Any

# The backend a login remembers for the Secret Service, which this stands in for.
KEYRING_BACKEND = "keyring.backends.SecretService.Keyring"
# What keyring's backend marks its items with.
APPLICATION = "Python keyring library"
BUS_NAME = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"


class _NotSettled(Exception):
    """The short way of reading cannot say; secretstorage's can."""


class SecretService:
    """get/set/delete_password as keyring's SecretService backend, on one D-Bus connection.

    Made only where the service answers on the session bus (else RuntimeError, as keyring's
    backend reports it). Every call may wait on a prompt; the caller bounds it with a timeout.
    """

    name = "SecretService Keyring"

    def __init__(self) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import Proxy, open_dbus_connection

        try:
            self._connection = open_dbus_connection(bus="SESSION")
        except KeyError as exc:  # no DBUS_SESSION_BUS_ADDRESS: cron, ssh, Termux
            raise RuntimeError(f"environment variable {exc.args[0]} is unset") from None
        bus = Proxy(message_bus, self._connection)
        if not (bus.NameHasOwner(BUS_NAME)[0] == 1 or BUS_NAME in bus.ListActivatableNames()[0]):
            self._connection.close()
            raise RuntimeError("the Secret Service daemon is neither running nor activatable through D-Bus")
        self._collection: Any = None
        self._session: str | None = None  # the plain session's object path, once opened

    def get_password(self, service: str, username: str) -> str | None:
        try:
            return self._read(service, username)
        except _NotSettled:
            pass
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

    def _read(self, service: str, username: str) -> str | None:
        """The first matching item's secret in the default collection, through a plain session;
        _NotSettled when that takes more than asking (see the module's docstring)."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        def call(path: str, interface: str, method: str, signature: str, body: tuple) -> Any:
            address = DBusAddress(path, BUS_NAME, f"org.freedesktop.Secret.{interface}")
            return unwrap_msg(self._connection.send_and_get_reply(new_method_call(address, method, signature, body)))

        try:
            (found,) = call(DEFAULT_COLLECTION, "Collection", "SearchItems", "a{ss}", ({"service": service, "username": username},))
            if not found:
                return None
            if self._session is None:
                _, self._session = call(SERVICE_PATH, "Service", "OpenSession", "sv", ("plain", ("s", "")))
            (secrets,) = call(SERVICE_PATH, "Service", "GetSecrets", "aoo", (found[:1], self._session))
        except DBusErrorResponse:  # no default collection, "plain" refused, the item locked
            raise _NotSettled from None
        if found[0] not in secrets:  # a locked item is left out of the answer
            raise _NotSettled
        return bytes(secrets[found[0]][2]).decode("utf-8")

    def _items(self, service: str, username: str) -> Any:
        return self._unlocked().search_items({"service": service, "username": username})

    def _unlocked(self) -> Any:
        """The default collection, unlocked (asking the service to, once)."""
        if self._collection is None:
            import secretstorage
            from secretstorage.util import add_match_rules

            add_match_rules(self._connection)  # an unlock prompt's answer comes as a signal
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
