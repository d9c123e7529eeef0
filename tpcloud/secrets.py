"""Where tpcloud keeps its token and credentials: the OS keyring, or an owner-only file.

Every command goes through :class:`SecretStore`, so the choice of backend, the time limit on a
keyring that never answers, and the wording of errors live in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tpcloud.config import SECRET_STORE_VAR as STORE_VAR
from tpcloud.errors import SecretStoreError, TpcloudError
from tpcloud.secretservice import KEYRING_BACKEND as SECRET_SERVICE
from tpcloud.secretservice import SecretService
from tpcloud.storechoice import FILE, Choice, recall, remember

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    from tpcloud.config import Settings
    from tpcloud.filestore import FileStore
    from tpcloud.keyringstore import KeyringStore

    Store = FileStore | KeyringStore

T = TypeVar("T")

SERVICE = "tpcloud"
# Everything tpcloud keeps; lan_sessions holds the KLAP/AES sessions of tpcloud.lan.sessions.
# cloud_api ("v1" or "v2") and cloud_url (V2's regional server) say where the token is valid;
# mfa_pending is a login waiting for its 2-step verification code (tpcloud.cloud.session).
NAMES = (
    "token", "refresh_token", "terminal_uuid", "username", "password", "lan_sessions",
    "cloud_api", "cloud_url", "mfa_pending",
)
_USE_FILE = f"use the file store: {STORE_VAR}=file"
_CANNOT_LOAD = "cannot load the OS keyring"


class SecretStore:
    """The secrets of one tpcloud run, in the backend the settings ask for.

    ``TPCLOUD_SECRET_STORE=file`` uses the file store, ``=keyring`` insists on the OS keyring
    keyring finds. Unset, the choice remembered in ``store.json`` (tpcloud.storechoice) stands:
    the file store, without loading keyring, or the keyring backend remembered, loaded alone. A
    full probe of keyring's backends chooses, and is remembered, at ``login``
    (:meth:`choose_afresh`), when nothing is remembered yet, and when the remembered backend is
    not usable here. With ``PYTHON_KEYRING_BACKEND`` set, keyring's choice is what the user asked
    for: it is taken on every run, and nothing is remembered. The choice is made on first use, so
    commands that never touch a secret never make it.

    The secrets are read once per run and kept; :meth:`get` with ``fresh`` reads them again, to
    see what another process stored meanwhile. Every OS-keyring call runs in a daemon thread with
    ``timeout``: a locked SecretService may wait forever for a prompt nobody can answer, and a
    daemon thread (unlike a concurrent.futures one, which is joined at exit) lets tpcloud give up
    and exit.
    """

    def __init__(self, settings: "Settings", *, timeout: float = 5.0, log: Callable[[str], None] | None = None) -> None:
        self._settings = settings
        self._timeout = timeout
        self._log = log or (lambda message: None)
        self._store: Store | None = None
        self._is_file = False
        self._entries: dict[str, str] | None = None
        self._hung = False
        self._afresh = False

    @property
    def description(self) -> str:
        """Where the secrets go, in one line, for ``login`` to tell the user."""
        store = self._chosen()
        if self._is_file:
            return store.description  # type: ignore[union-attr]
        return f"OS keyring ({type(store.backend).name.removesuffix(' Keyring')})"  # type: ignore[union-attr]

    @property
    def is_file_store(self) -> bool:
        self._chosen()
        return self._is_file

    def get(self, name: str, *, fresh: bool = False) -> str | None:
        """The secret NAME; FRESH reads the store again instead of what this run read before."""
        _check_name(name)
        if self._entries is None or fresh:
            self._entries = self._run(lambda store: store.entries(SERVICE))
        return self._entries.get(name)

    def update(self, values: Mapping[str, str | None]) -> None:
        """Set each name to its value; None deletes it. One write, of what the store holds now."""
        _check(values)
        self._entries = self._run(lambda store: store.update(SERVICE, values))

    def modify(self, name: str, change: Callable[[str | None], str | None]) -> None:
        """Set NAME to CHANGE(its value as stored now): read and written in one step, under the
        store's lock, so what another run stored meanwhile is not lost."""
        _check_name(name)
        self._entries = self._run(
            lambda store: store.update(SERVICE, lambda entries: _check({name: change(entries.get(name))}))
        )

    def clear(self) -> None:
        """Forget everything tpcloud keeps (logout); nothing to forget is fine."""
        self._run(lambda store: store.clear(SERVICE))
        self._entries = {}

    def choose_afresh(self) -> None:
        """Choose the store by a full probe on first use from now on, and remember it (``login``)."""
        self._store = self._entries = None
        self._afresh = True

    def remembered(self) -> Choice | None:
        """The choice store.json remembers, if it can be read (for ``doctor``)."""
        return self._recall()

    def probe(self) -> Choice:
        """What a full probe of keyring's backends finds now; changes nothing (for ``doctor``)."""
        found, usable = self._probe()
        return Choice("keyring", _class_name(found)) if usable else FILE

    def _run(self, operation: Callable[["Store"], T]) -> T:
        """OPERATION on the chosen store; on the OS keyring, under the time limit."""
        store = self._chosen()
        return operation(store) if self._is_file else self._ask(operation, store)  # type: ignore[no-any-return]

    def _chosen(self) -> "Store":
        if self._store is None:
            self._store, self._is_file = self._select()
        return self._store

    def _select(self) -> tuple["Store", bool]:
        """The store, and whether it is the file store."""
        forced = self._settings.secret_store
        if forced == "file":
            return self._file_store(), True
        # The remembered choice is tpcloud's, for when neither tpcloud's knob nor keyring's is set.
        memory = forced == "" and not self._settings.keyring_backend
        remembered = self._recall() if memory and not self._afresh else None
        if remembered == FILE:
            return self._file_store(), True
        if remembered is not None:
            if remembered.backend != SECRET_SERVICE:  # which is reached without keyring
                import keyring  # noqa: F401 - importing cannot hang; keep its cost out of the timeout

            backend, why = self._ask(_load_backend, remembered.backend, failing=_CANNOT_LOAD)
            if backend is not None:
                return self._keyring_store(backend), False
            self._log(f"the remembered OS keyring {remembered.backend} is not usable here ({why}); "
                      "probing keyring's backends")
        found, usable = self._probe()
        if usable:
            if memory:
                self._remember(Choice("keyring", _class_name(found)), remembered)
            return self._keyring_store(found), False
        if forced == "keyring":
            raise SecretStoreError(
                f"no usable OS keyring ({STORE_VAR}=keyring, but keyring offers only {_class_name(found)})",
                hint=f"install or start one (e.g. gnome-keyring), or {_USE_FILE}",
            )
        # Only a login moves a remembered keyring to the file store: a run without a D-Bus session
        # (cron, ssh) must not hide the secrets a desktop session keeps in the keyring. For the same
        # reason, with nothing remembered, the file store is remembered once it holds secrets.
        if memory and (self._afresh or (remembered is None and self._settings.secrets_file.exists())):
            self._remember(FILE, remembered)
        return self._file_store(), True

    def _probe(self) -> tuple[KeyringBackend, bool]:
        import keyring  # noqa: F401 - importing cannot hang; keep its cost out of the timeout

        return self._ask(_os_keyring, failing=_CANNOT_LOAD)  # type: ignore[no-any-return]

    def _recall(self) -> Choice | None:
        path = self._settings.store_choice_file
        try:
            return recall(path)
        except ValueError as why:
            self._log(f"{path} is unreadable ({why}); taking it as nothing remembered")
            return None

    def _remember(self, choice: Choice, before: Choice | None) -> None:
        """Keep CHOICE in store.json unless BEFORE (what was remembered) is the same."""
        if choice == before:
            return
        path = self._settings.store_choice_file
        try:
            remember(path, choice)
        except OSError as exc:  # the store still works; the next run probes again
            self._log(f"cannot remember the secret store in {path}: {exc.strerror or exc}")
        else:
            self._log(f"remembered {choice} in {path}")

    def _file_store(self) -> "FileStore":
        from tpcloud.filestore import FileStore

        return FileStore(self._settings.secrets_file, self._settings.passphrase)

    def _keyring_store(self, backend: "KeyringBackend") -> "KeyringStore":
        from tpcloud.keyringstore import KeyringStore

        return KeyringStore(backend, lock=self._settings.config_dir / "keyring.lock", old_names=NAMES, log=self._log)

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


def _load_backend(name: str) -> tuple[KeyringBackend | None, str]:
    """The remembered backend class NAME, made, when it is usable here; else None and why not.

    Only that class is imported and asked for its priority, instead of every backend keyring
    knows; the Secret Service is reached without keyring (``tpcloud.secretservice``), asked only
    whether the daemon is on the session bus.
    """
    import importlib

    if name == SECRET_SERVICE:
        try:
            return SecretService(), ""  # type: ignore[return-value]
        except Exception as exc:  # secretstorage missing, no session bus, no daemon on it
            return None, _one_line(exc)
    from keyring.backend import KeyringBackend

    module, _, attribute = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attribute)
        if not (isinstance(cls, type) and issubclass(cls, KeyringBackend)):
            return None, "not a keyring backend"
        backend = cls()
        if _usable(backend):
            return backend, ""
        return None, f"priority {cls.priority}"
    except Exception as exc:  # not installed, not viable here (priority raises), ...
        return None, _one_line(exc)


def _usable(backend: KeyringBackend) -> bool:
    """Recommended keyrings have priority >= 1; below are the fail and null keyrings and plaintext
    stores, none of which should be taken for the OS keyring."""
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):  # its own priority says nothing when explicitly chosen
        return any(_usable(b) for b in backend.backends)
    return bool(type(backend).priority >= 1)


def _class_name(backend: KeyringBackend) -> str:
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def _check(values: Mapping[str, str | None]) -> Mapping[str, str | None]:
    for name, value in values.items():
        _check_name(name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"the value for {name!r} must be a str or None")
    return values


def _check_name(name: str) -> None:
    # Everything kept must be in NAMES, or ``clear`` (logout) would leave it behind.
    if name not in NAMES:
        raise ValueError(f"unknown secret name {name!r}; add it to tpcloud.secrets.NAMES")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
