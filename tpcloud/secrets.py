"""Where tpcloud keeps its token and credentials: the OS keyring, or an owner-only file.

Every command goes through :class:`SecretStore`, so the choice of backend, the time limit on a
keyring that never answers, and the wording of errors live in one place.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tpcloud.config import SECRET_STORE_VAR as STORE_VAR
from tpcloud.errors import SecretStoreError, TpcloudError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    from tpcloud.config import Settings
    from tpcloud.filestore import FileStore

SERVICE = "tpcloud"
# Everything tpcloud keeps; lan_sessions holds the KLAP/AES sessions of tpcloud.lan.sessions.
# cloud_api ("v1" or "v2") and cloud_url (V2's regional server) say where the token is valid;
# mfa_pending is a login waiting for its 2-step verification code (tpcloud.cloud.session).
NAMES = (
    "token", "refresh_token", "terminal_uuid", "username", "password", "lan_sessions",
    "cloud_api", "cloud_url", "mfa_pending",
)
_USE_FILE = f"use the file store: {STORE_VAR}=file"


class SecretStore:
    """The secrets of one tpcloud run, in the backend the settings ask for.

    ``TPCLOUD_SECRET_STORE=file`` uses the file store, ``=keyring`` insists on the OS keyring, and
    unset takes the OS keyring when keyring finds a usable one (honouring
    ``PYTHON_KEYRING_BACKEND``), else the file store. The choice is made on first use, so commands
    that never touch a secret never load keyring. Every OS-keyring call runs in a daemon thread
    with ``timeout``: a locked SecretService may wait forever for a prompt nobody can answer, and
    a daemon thread (unlike a concurrent.futures one, which is joined at exit) lets tpcloud give up
    and exit.
    """

    def __init__(self, settings: "Settings", *, timeout: float = 5.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._backend: KeyringBackend | FileStore | None = None
        self._is_file = False
        self._hung = False

    @property
    def description(self) -> str:
        """Where the secrets go, in one line, for ``login`` to tell the user."""
        backend = self._chosen()
        if self._is_file:
            return backend.description  # type: ignore[attr-defined, no-any-return]
        return f"OS keyring ({type(backend).name.removesuffix(' Keyring')})"

    @property
    def is_file_store(self) -> bool:
        self._chosen()
        return self._is_file

    def get(self, name: str) -> str | None:
        _check_name(name)
        backend = self._chosen()
        if self._is_file:
            return backend.get_password(SERVICE, name)
        return self._ask(backend.get_password, SERVICE, name)  # type: ignore[no-any-return]

    def update(self, values: Mapping[str, str | None]) -> None:
        """Set each name to its value; None deletes it. One atomic write on the file store."""
        for name in values:
            _check_name(name)
        backend = self._chosen()
        if self._is_file:
            backend.update(SERVICE, values)  # type: ignore[attr-defined]
            return
        for name, value in values.items():
            if value is None:
                self._ask(_delete_if_present, backend, name)
            else:
                self._ask(backend.set_password, SERVICE, name, value)

    def clear(self) -> None:
        """Forget everything tpcloud keeps (logout); nothing to forget is fine."""
        self.update(dict.fromkeys(NAMES))

    def _chosen(self) -> KeyringBackend | FileStore:
        if self._backend is None:
            self._backend, self._is_file = self._select()
        return self._backend

    def _select(self) -> tuple[KeyringBackend | FileStore, bool]:
        """The backend, and whether it is the file store."""
        choice = self._settings.secret_store
        if choice != "file":
            import keyring  # noqa: F401 - importing cannot hang; keep its cost out of the timeout

            found, usable = self._ask(_os_keyring, failing="cannot load the OS keyring")
            if usable:
                return found, False
            if choice == "keyring":
                kind = type(found)
                raise SecretStoreError(
                    f"no usable OS keyring ({STORE_VAR}=keyring, but keyring offers only "
                    f"{kind.__module__}.{kind.__name__})",
                    hint=f"install or start one (e.g. gnome-keyring), or {_USE_FILE}",
                )
        from tpcloud.filestore import FileStore

        return FileStore(self._settings.secrets_file, self._settings.passphrase), True

    def _ask(self, call: Callable[..., Any], *args: Any, failing: str = "the OS keyring failed") -> Any:
        """Run ``call`` in a daemon thread and give up after the timeout."""
        if self._hung:  # the earlier call is still stuck; another one would only queue behind it
            raise self._timeout_error()
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["value"] = call(*args)
            except BaseException as exc:  # handed over to the waiting thread
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="tpcloud-keyring", daemon=True).start()
        if not done.wait(self._timeout):
            self._hung = True
            raise self._timeout_error()
        error = outcome.get("error")
        if error is None:
            return outcome.get("value")
        if isinstance(error, TpcloudError):
            raise error
        from keyring.errors import KeyringLocked

        if isinstance(error, KeyringLocked):
            raise SecretStoreError("the OS keyring is locked", hint=f"unlock it, or {_USE_FILE}") from error
        raise SecretStoreError(f"{failing}: {_one_line(error)}", hint=f"check it, or {_USE_FILE}") from error

    def _timeout_error(self) -> SecretStoreError:
        return SecretStoreError(
            f"the OS keyring did not answer within {self._timeout:g} s (locked?)",
            hint=f"unlock it, or {_USE_FILE}",
        )


def _os_keyring() -> tuple[KeyringBackend, bool]:
    """keyring's choice of backend, and whether it is a real OS keyring worth using."""
    import keyring

    found = keyring.get_keyring()
    return found, _usable(found)


def _usable(backend: KeyringBackend) -> bool:
    """Recommended keyrings have priority >= 1; below are the fail and null keyrings and plaintext
    stores, none of which should be taken for the OS keyring."""
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):  # its own priority says nothing when explicitly chosen
        return any(_usable(b) for b in backend.backends)
    return bool(type(backend).priority >= 1)


def _delete_if_present(backend: KeyringBackend, name: str) -> None:
    from keyring.errors import PasswordDeleteError

    with contextlib.suppress(PasswordDeleteError):  # deleting what is not there is fine
        backend.delete_password(SERVICE, name)


def _check_name(name: str) -> None:
    # Everything kept must be in NAMES, or ``clear`` (logout) would leave it behind.
    if name not in NAMES:
        raise ValueError(f"unknown secret name {name!r}; add it to tpcloud.secrets.NAMES")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
