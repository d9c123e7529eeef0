"""The secret store: the owner-only file (plain and encrypted) and the choice of backend."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import keyring
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

from tests.conftest import all_at_once
from tpcloud import filestore, secrets
from tpcloud.errors import SecretStoreError, UsageError
from tpcloud.filestore import FileStore
from tpcloud.config import Settings
from tpcloud.secrets import NAMES, SERVICE, SecretStore

SECRET = "tok-3f9a-SECRET-VALUE"
PASSPHRASE = "correct horse battery staple"
REPO = Path(__file__).resolve().parents[1]


# Test keyring backends, loaded by keyring through PYTHON_KEYRING_BACKEND=<this module>.<class>.


def _only_when_named(cls: type) -> float:
    # Defining a backend registers it with keyring; it must never be picked automatically.
    if os.environ.get("PYTHON_KEYRING_BACKEND") != f"{__name__}.{cls.__name__}":
        raise RuntimeError("test backend, used only when named in PYTHON_KEYRING_BACKEND")
    return 5


class MemoryKeyring(KeyringBackend):
    """A well-behaved OS keyring that counts the calls made to it."""

    stored: dict[tuple[str, str], str] = {}
    calls: list[tuple[str, str]] = []
    priority = properties.classproperty(_only_when_named)

    def get_password(self, service, username):
        self.calls.append(("get", username))
        return self.stored.get((service, username))

    def set_password(self, service, username, password):
        self.calls.append(("set", username))
        self.stored[(service, username)] = password

    def delete_password(self, service, username):
        self.calls.append(("delete", username))
        if self.stored.pop((service, username), None) is None:
            raise PasswordDeleteError("not there")


RELEASE = threading.Event()  # lets the stuck threads finish when the test is over


class HangingKeyring(KeyringBackend):
    """A locked keyring waiting for a prompt nobody answers."""

    priority = properties.classproperty(_only_when_named)

    def get_password(self, service, username):
        RELEASE.wait()

    set_password = delete_password = get_password


class HangingInitKeyring(HangingKeyring):
    """A keyring that hangs while keyring sets it up."""

    def __init__(self):
        super().__init__()
        RELEASE.wait()


class BrokenKeyring(MemoryKeyring):
    def get_password(self, service, username):
        raise OSError("org.freedesktop.DBus.Error.ServiceUnknown\nmore detail")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for var in ("PYTHON_KEYRING_BACKEND", "TPCLOUD_PASSPHRASE", "TPCLOUD_SECRET_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)  # keyring caches its choice
    MemoryKeyring.stored = {}
    MemoryKeyring.calls = []
    RELEASE.clear()
    yield
    # Let stuck keyring threads finish now, before monkeypatch restores keyring's cached choice,
    # or one of them could set it behind a later test's back.
    RELEASE.set()
    for thread in threading.enumerate():
        if thread.name == "tpcloud-keyring":
            thread.join(5)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "config" / "tpcloud" / "secrets.json"


@pytest.fixture
def env(tmp_path):
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def encrypted_file(path: Path, token: str = SECRET) -> bytes:
    FileStore(path, PASSPHRASE).update("svc", {"token": token, "refresh_token": "refresh-" + token})
    return path.read_bytes()


# The file store


def test_round_trip_unencrypted(path):
    store = FileStore(path, "")
    assert store.entries("svc").get("token") is None
    assert not path.parent.exists()  # reading creates nothing
    store.update("svc", {"token": SECRET})
    assert FileStore(path, "").entries("svc").get("token") == SECRET
    doc = json.loads(path.read_text())
    assert doc == {
        "format": "tpcloud-secrets",
        "version": 1,
        "encryption": "none",
        "secrets": {"svc": {"token": SECRET}},
    }
    store.update("svc", {"token": None})
    assert store.entries("svc").get("token") is None


def test_file_and_folder_modes(path):
    FileStore(path, "").update("svc", {"token": SECRET})
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert mode(path.with_suffix(".lock")) == 0o600
    FileStore(path, PASSPHRASE).update("svc", {"token": SECRET})
    assert mode(path) == 0o600


def test_round_trip_encrypted(path):
    data = encrypted_file(path)
    assert SECRET.encode() not in data
    doc = json.loads(data)
    assert doc["encryption"] == "scrypt+aes-256-gcm"
    assert "secrets" not in doc
    store = FileStore(path, PASSPHRASE)
    assert store.entries("svc").get("token") == SECRET
    assert store.entries("svc").get("refresh_token") == "refresh-" + SECRET


def test_fresh_salt_and_nonce_on_every_write(path):
    first = json.loads(encrypted_file(path))
    second = json.loads(encrypted_file(path, "another-token"))
    assert first["kdf"]["salt"] != second["kdf"]["salt"]
    assert first["nonce"] != second["nonce"]


def test_wrong_passphrase_fails_and_destroys_nothing(path):
    before = encrypted_file(path)
    store = FileStore(path, "not the passphrase")
    with pytest.raises(SecretStoreError, match="TPCLOUD_PASSPHRASE is wrong") as caught:
        store.entries("svc").get("token")
    assert "not the passphrase" not in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(SecretStoreError):
        store.update("svc", {"token": "new"})
    with pytest.raises(SecretStoreError):
        store.update("svc", {"token": None})
    assert path.read_bytes() == before


def test_encrypted_file_without_passphrase(path):
    before = encrypted_file(path)
    store = FileStore(path, "")
    with pytest.raises(SecretStoreError, match="is encrypted; set TPCLOUD_PASSPHRASE"):
        store.entries("svc").get("token")
    with pytest.raises(SecretStoreError, match="is encrypted"):
        store.update("svc", {"token": "new"})
    assert path.read_bytes() == before


def test_group_readable_file_is_refused(path):
    FileStore(path, "").update("svc", {"token": SECRET})
    before = path.read_bytes()
    path.chmod(0o640)
    with pytest.raises(SecretStoreError) as caught:
        FileStore(path, "").entries("svc").get("token")
    message = str(caught.value)
    assert str(path) in message and "0640" in message and f"chmod 600 {path}" in message
    assert "\n" not in message and SECRET not in message
    with pytest.raises(SecretStoreError, match="chmod 600"):
        FileStore(path, "").update("svc", {"token": "new"})
    assert path.read_bytes() == before and mode(path) == 0o640


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[]",
        '{"format": "something-else", "version": 1}',
        '{"format": "tpcloud-secrets", "version": 1, "encryption": "rot13", "secrets": {}}',
        '{"format": "tpcloud-secrets", "version": 1, "encryption": "none", "secrets": {"svc": {"token": 5}}}',
        '{"format": "tpcloud-secrets", "version": 1, "encryption": "none", "secrets": ["x"]}',
        '{"format": "tpcloud-secrets", "version": 1, "encryption": "scrypt+aes-256-gcm", "nonce": "AA=="}',
        '{"format": "tpcloud-secrets", "version": 1, "encryption": "scrypt+aes-256-gcm",'
        ' "kdf": {"salt": "AAAA", "n": 1073741824, "r": 8, "p": 1}, "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "AAAA"}',
        '{"format": "tpcloud-secrets", "version": 99, "encryption": "none", "secrets": {}}',
    ],
)
def test_unreadable_file_is_reported_and_left_untouched(path, content):
    path.parent.mkdir(parents=True)
    path.write_text(content)
    path.chmod(0o600)
    for passphrase in ("", PASSPHRASE):
        store = FileStore(path, passphrase)
        with pytest.raises(SecretStoreError) as caught:
            store.entries("svc").get("token")
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
        with pytest.raises(SecretStoreError):
            store.update("svc", {"token": "new"})
    assert path.read_text() == content


def test_unencrypted_file_is_encrypted_on_next_write(path):
    FileStore(path, "").update("svc", {"token": SECRET, "username": "me@example.com"})
    assert SECRET.encode() in path.read_bytes()
    FileStore(path, PASSPHRASE).update("svc", {"refresh_token": "r-" + SECRET})
    data = path.read_bytes()
    assert json.loads(data)["encryption"] == "scrypt+aes-256-gcm"
    assert SECRET.encode() not in data and b"me@example.com" not in data
    store = FileStore(path, PASSPHRASE)
    assert store.entries("svc").get("token") == SECRET
    assert store.entries("svc").get("username") == "me@example.com"


def test_update_is_one_write_and_none_deletes(path, monkeypatch):
    store = FileStore(path, "")
    store.update("svc", {"token": "old", "refresh_token": "old-r", "username": "me"})
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(filestore.os, "replace", lambda *a: (replaced.append(a), real_replace(*a)))
    store.update("svc", {"token": "new", "refresh_token": None, "password": "pw"})
    assert len(replaced) == 1
    assert json.loads(path.read_text())["secrets"] == {"svc": {"token": "new", "username": "me", "password": "pw"}}
    store.update("svc", {"token": None, "username": None, "password": None})
    assert json.loads(path.read_text())["secrets"] == {}


def test_deleting_touches_only_the_names_given(path):
    store = FileStore(path, "")
    store.update("svc", {"token": None})  # nothing to delete is fine
    store.update("svc", {"token": "a", "username": "b"})
    store.update("other", {"token": "c"})
    store.update("svc", {"token": None, "username": None})
    assert store.entries("svc").get("token") is None and store.entries("svc").get("username") is None
    assert store.entries("other").get("token") == "c"
    assert json.loads(path.read_text())["secrets"] == {"other": {"token": "c"}}


def test_no_temp_files_left_behind(path, monkeypatch):
    store = FileStore(path, PASSPHRASE)
    for i in range(5):
        store.update("svc", {"token": str(i)})
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.json", "secrets.lock"]
    before = path.read_bytes()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(filestore.os, "replace", fail)
    with pytest.raises(SecretStoreError, match="cannot write .*No space left on device"):
        store.update("svc", {"token": "lost"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.json", "secrets.lock"]


WRITER = """
import sys, time
from pathlib import Path
from tpcloud.filestore import FileStore
path, passphrase, name, count, go = sys.argv[1:]
store = FileStore(Path(path), passphrase)
while not Path(go).exists():
    time.sleep(0.005)
for i in range(int(count)):
    store.update("svc", {name: str(i), "last": name})
"""


@pytest.mark.parametrize(("passphrase", "count"), [("", 30), (PASSPHRASE, 4)])
def test_concurrent_writers_lose_no_update(path, tmp_path, passphrase, count):
    go = tmp_path / "go"
    names = [f"writer{i}" for i in range(6)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    all_at_once([[WRITER, str(path), passphrase, name, str(count), str(go)] for name in names], env, go)
    store = FileStore(path, passphrase)
    assert {name: store.entries("svc").get(name) for name in names} == dict.fromkeys(names, str(count - 1))
    assert store.entries("svc").get("last") in names
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.json", "secrets.lock"]


def secret_store(env: dict, **options) -> SecretStore:
    """The store a run with environment ENV uses (every knob is read once, into Settings)."""
    return SecretStore(Settings.from_env(env), **options)


def test_the_default_path_follows_xdg(tmp_path):
    settings = Settings.from_env({"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert settings.secrets_file == tmp_path / "xdg" / "tpcloud" / "secrets.json"
    ignored = {"XDG_CONFIG_HOME": "relative/ignored", "HOME": str(tmp_path / "home")}
    assert Settings.from_env(ignored).secrets_file == tmp_path / "home" / ".config" / "tpcloud" / "secrets.json"


def test_the_file_store_loads_neither_keyring_nor_without_a_passphrase_cryptography(path):
    script = (
        "import sys\nfrom pathlib import Path\nfrom tpcloud.config import Settings\nfrom tpcloud.secrets import SecretStore\n"
        f"s = SecretStore(Settings.from_env({{'TPCLOUD_SECRET_STORE': 'file', 'XDG_CONFIG_HOME': {str(path.parent.parent)!r}}}))\n"
        "s.update({'token': 'x'})\nassert s.get('token') == 'x'\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('keyring', 'cryptography')], sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    assert json.loads(path.read_text())["secrets"] == {SERVICE: {"token": "x"}}


# SecretStore and the choice of backend


def test_file_store_chosen_explicitly(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TPCLOUD_PASSPHRASE", PASSPHRASE)  # os.environ is not the environment given
    store = secret_store({**env, "TPCLOUD_SECRET_STORE": "file"})
    assert store.is_file_store
    path = tmp_path / "config" / "tpcloud" / "secrets.json"
    assert store.description == f"file store {path} (not encrypted: set TPCLOUD_PASSPHRASE to encrypt it)"
    store.update({"token": SECRET, "refresh_token": "r", "terminal_uuid": "u"})
    assert store.get("token") == SECRET
    assert json.loads(path.read_text())["secrets"][SERVICE]["token"] == SECRET
    store.update({"refresh_token": None})
    assert store.get("refresh_token") is None and store.get("terminal_uuid") == "u"
    store.clear()
    store.clear()
    assert all(store.get(name) is None for name in NAMES)


def test_file_store_uses_the_passphrase_given(env, tmp_path):
    store = secret_store({**env, "TPCLOUD_SECRET_STORE": "file", "TPCLOUD_PASSPHRASE": PASSPHRASE})
    assert store.description.endswith("(encrypted with TPCLOUD_PASSPHRASE)")
    store.update({"token": SECRET})
    assert SECRET.encode() not in (tmp_path / "config" / "tpcloud" / "secrets.json").read_bytes()
    assert secret_store({**env, "TPCLOUD_SECRET_STORE": "file", "TPCLOUD_PASSPHRASE": PASSPHRASE}).get("token") == SECRET
    with pytest.raises(SecretStoreError, match="is encrypted"):
        secret_store({**env, "TPCLOUD_SECRET_STORE": "file"}).get("token")


@pytest.mark.parametrize(
    "backend",
    ["keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"],
)
def test_no_usable_os_keyring_means_the_file_store(env, tmp_path, monkeypatch, backend):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", backend)
    store = secret_store(env)
    assert store.is_file_store
    store.update({"username": "me"})
    assert (tmp_path / "config" / "tpcloud" / "secrets.json").exists()  # the path from env, not os.environ
    assert store.get("username") == "me"


def test_keyring_insisted_on_but_none_usable(env, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with pytest.raises(SecretStoreError, match="no usable OS keyring") as caught:
        secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"}).get("token")
    assert "TPCLOUD_SECRET_STORE=file" in caught.value.hint


def test_unknown_store_choice(env):
    with pytest.raises(UsageError, match="TPCLOUD_SECRET_STORE must be"):
        secret_store({**env, "TPCLOUD_SECRET_STORE": "vault"}).get("token")


MEMORY = f"{__name__}.MemoryKeyring"


def item() -> dict:
    """The one keyring item holding tpcloud's secrets."""
    return json.loads(MemoryKeyring.stored[(SERVICE, "secrets")])


def test_os_keyring_keeps_every_secret_in_one_item(env, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    store = secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"})
    assert not store.is_file_store
    assert store.description.startswith("OS keyring (") and "MemoryKeyring" in store.description
    store.update({"token": SECRET, "refresh_token": "r", "password": None})
    assert list(MemoryKeyring.stored) == [(SERVICE, "secrets")]
    assert item() == {"token": SECRET, "refresh_token": "r"}
    store.update({"refresh_token": None, "username": "me"})
    assert item() == {"token": SECRET, "username": "me"}
    assert secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"}).get("token") == SECRET
    store.clear()
    store.clear()
    assert MemoryKeyring.stored == {}
    assert store.get("token") is None
    # Changes are made under a lock beside the rest of the configuration; no secret goes there.
    assert sorted(p.name for p in (tmp_path / "config" / "tpcloud").iterdir()) == ["keyring.lock"]


def test_a_run_reads_the_item_once(env, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    MemoryKeyring.stored[(SERVICE, "secrets")] = json.dumps({"token": SECRET, "username": "me", "terminal_uuid": "u"})
    store = secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"})
    assert [store.get(name) for name in ("token", "username", "terminal_uuid", "password")] == [SECRET, "me", "u", None]
    assert MemoryKeyring.calls == [("get", "secrets")]
    MemoryKeyring.calls.clear()
    store.update({"token": "new"})  # read-modify-write: what another run stored meanwhile is kept
    assert MemoryKeyring.calls == [("get", "secrets"), ("set", "secrets")]
    MemoryKeyring.calls.clear()
    assert store.get("token") == "new" and MemoryKeyring.calls == []
    MemoryKeyring.stored[(SERVICE, "secrets")] = json.dumps({"token": "renewed elsewhere"})
    assert store.get("token") == "new"
    assert store.get("token", fresh=True) == "renewed elsewhere"


def test_modify_changes_the_value_stored_now(env, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    store = secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"})
    assert store.get("lan_sessions") is None
    MemoryKeyring.stored[(SERVICE, "secrets")] = json.dumps({"lan_sessions": "a"})  # another run
    store.modify("lan_sessions", lambda value: f"{value}+b")
    assert item() == {"lan_sessions": "a+b"}
    with pytest.raises(Exception, match="must be a str or None"):  # a bug, caught before anything is written
        store.modify("lan_sessions", lambda value: 5)
    assert item() == {"lan_sessions": "a+b"}
    store.modify("lan_sessions", lambda value: None)
    assert MemoryKeyring.stored == {}


def test_the_old_layout_is_moved_into_one_item(env, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    old = {"token": SECRET, "refresh_token": "r", "username": "me", "terminal_uuid": "u"}
    MemoryKeyring.stored = {(SERVICE, name): value for name, value in old.items()}
    MemoryKeyring.stored[("another service", "token")] = "theirs"
    logged = []
    store = SecretStore(Settings.from_env({**env, "TPCLOUD_SECRET_STORE": "keyring"}), log=logged.append)
    assert store.get("token") == SECRET and store.get("terminal_uuid") == "u"
    assert MemoryKeyring.stored == {(SERVICE, "secrets"): json.dumps(old, sort_keys=True, separators=(",", ":")),
                                    ("another service", "token"): "theirs"}
    assert logged == ["moved 4 secrets from one OS keyring item each into the item tpcloud/secrets"]
    MemoryKeyring.calls.clear()
    assert secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"}).get("username") == "me"
    assert MemoryKeyring.calls == [("get", "secrets")]


def test_logout_removes_old_items_left_behind(env, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    MemoryKeyring.stored = {(SERVICE, "secrets"): '{"token": "t"}', (SERVICE, "password"): "pw"}
    secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"}).clear()
    assert MemoryKeyring.stored == {}


@pytest.mark.parametrize("content", ["not json", "", "[]", '"token"', '{"token": 5}', '{"token": null}'])
def test_a_malformed_item_is_one_clear_error_and_changes_nothing(env, monkeypatch, content):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    MemoryKeyring.stored = {(SERVICE, "secrets"): content, (SERVICE, "password"): "old layout"}
    store = secret_store({**env, "TPCLOUD_SECRET_STORE": "keyring"})
    for attempt in (lambda: store.get("token"), lambda: store.update({"token": "new"})):
        with pytest.raises(SecretStoreError) as caught:
            attempt()
        assert str(caught.value) == (
            "the OS keyring item tpcloud/secrets is unreadable (not a JSON object of names to strings); "
            "it was left untouched"
        )
        assert "logout" in caught.value.hint
    assert MemoryKeyring.stored == {(SERVICE, "secrets"): content, (SERVICE, "password"): "old layout"}
    store.clear()  # logout is the way out
    assert MemoryKeyring.stored == {}


# The remembered choice (store.json)


def remembered(tmp_path) -> dict | None:
    path = tmp_path / "config" / "tpcloud" / "store.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_choice(tmp_path, content: str) -> Path:
    path = tmp_path / "config" / "tpcloud" / "store.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


@pytest.fixture
def no_probe(monkeypatch):
    """Fails any full probe of keyring's backends."""
    def probe():
        raise AssertionError("probed keyring's backends")

    monkeypatch.setattr(secrets, "_os_keyring", probe)


def test_the_probes_choice_is_remembered_and_then_loaded_alone(env, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)  # keyring's probe finds it; tpcloud's env lacks it
    logged = []
    store = SecretStore(Settings.from_env(env), log=logged.append)
    store.update({"token": SECRET})
    assert remembered(tmp_path) == {"store": "keyring", "backend": MEMORY}
    assert mode(tmp_path / "config" / "tpcloud" / "store.json") == 0o600
    assert logged == [f"remembered the OS keyring ({MEMORY}) in {tmp_path}/config/tpcloud/store.json"]
    monkeypatch.setattr(secrets, "_os_keyring", lambda: pytest.fail("probed keyring's backends"))
    again = secret_store(env)
    assert again.get("token") == SECRET and not again.is_file_store


def test_the_file_store_remembered_is_used_without_asking_keyring(env, tmp_path, monkeypatch, no_probe):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    write_choice(tmp_path, '{"store": "file"}')
    store = secret_store(env)
    store.update({"token": SECRET})
    assert store.is_file_store and MemoryKeyring.calls == []
    assert secret_store({**env, "TPCLOUD_SECRET_STORE": "file"}).get("token") == SECRET


def test_a_remembered_backend_that_is_not_usable_means_a_probe(env, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    write_choice(tmp_path, '{"store": "keyring", "backend": "no_such_module.Keyring"}')
    logged = []
    store = SecretStore(Settings.from_env(env), log=logged.append)
    assert not store.is_file_store
    assert logged[0] == ("the remembered OS keyring no_such_module.Keyring is not usable here (ModuleNotFoundError: "
                         "No module named 'no_such_module'); probing keyring's backends")
    assert remembered(tmp_path) == {"store": "keyring", "backend": MEMORY}


@pytest.mark.parametrize("backend", ["keyring.backends.fail.Keyring", f"{__name__}.HangingKeyring", "json.JSONDecoder"])
def test_a_remembered_keyring_is_not_forgotten_in_a_run_that_cannot_use_it(env, tmp_path, monkeypatch, backend):
    # ssh or cron, without the desktop's D-Bus session: the file store for this run only.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    path = write_choice(tmp_path, json.dumps({"store": "keyring", "backend": backend}))
    before = path.read_bytes()
    store = secret_store(env)
    store.update({"token": SECRET})
    assert store.is_file_store
    assert path.read_bytes() == before


def test_with_nothing_remembered_the_file_store_is_remembered_once_it_holds_secrets(env, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    store = secret_store(env)
    assert store.get("token") is None and store.is_file_store
    assert remembered(tmp_path) is None  # a secret may still wait in an OS keyring this run cannot see
    store.update({"token": SECRET})
    assert remembered(tmp_path) is None
    assert secret_store(env).get("token") == SECRET
    assert remembered(tmp_path) == {"store": "file"}


def test_login_probes_again_and_remembers_what_it_finds(env, tmp_path, monkeypatch):
    write_choice(tmp_path, '{"store": "file"}')
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    store = secret_store(env)
    store.choose_afresh()
    store.update({"token": SECRET})
    assert remembered(tmp_path) == {"store": "keyring", "backend": MEMORY} and item() == {"token": SECRET}
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    store.choose_afresh()
    store.update({"token": "in the file"})
    assert remembered(tmp_path) == {"store": "file"} and store.is_file_store


@pytest.mark.parametrize("content", [
    "{not json", "", "[]", '{"store": "vault"}', '{"store": "keyring"}', '{"store": "keyring", "backend": "a b"}',
    '{"store": "keyring", "backend": "os.system(1)"}', '{"store": "file", "backend": "x.Y"}',
])
def test_a_garbled_choice_counts_as_nothing_remembered(env, tmp_path, monkeypatch, content):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    path = write_choice(tmp_path, content)
    logged = []
    store = SecretStore(Settings.from_env(env), log=logged.append)
    store.update({"token": SECRET})
    assert not store.is_file_store
    assert logged[0].startswith(f"{path} is unreadable (") and logged[0].endswith("); taking it as nothing remembered")
    assert remembered(tmp_path) == {"store": "keyring", "backend": MEMORY}


def test_a_choice_that_cannot_be_written_is_only_logged(env, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    (tmp_path / "config" / "tpcloud" / "store.json").mkdir(parents=True)  # a folder in the way
    logged = []
    store = SecretStore(Settings.from_env(env), log=logged.append)
    store.update({"token": SECRET})
    assert store.get("token") == SECRET
    assert any(line.startswith("cannot remember the secret store in ") for line in logged), logged


@pytest.mark.parametrize("forced", ["file", "keyring"])
def test_the_environment_overrides_what_is_remembered_and_changes_none_of_it(env, tmp_path, monkeypatch, forced):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY)
    path = write_choice(tmp_path, '{"store": "file"}' if forced == "keyring" else json.dumps(
        {"store": "keyring", "backend": MEMORY}))
    before = path.read_bytes()
    store = secret_store({**env, "TPCLOUD_SECRET_STORE": forced})
    store.choose_afresh()  # a login too
    store.update({"token": SECRET})
    assert store.is_file_store == (forced == "file")
    # PYTHON_KEYRING_BACKEND: keyring's knob names the backend on every run, so nothing is remembered.
    store = secret_store({**env, "PYTHON_KEYRING_BACKEND": MEMORY})
    store.choose_afresh()
    store.update({"token": SECRET})
    assert not store.is_file_store
    assert path.read_bytes() == before


def test_unknown_name_is_a_bug(env):
    with pytest.raises(ValueError):
        secret_store({**env, "TPCLOUD_SECRET_STORE": "file"}).get("tokne")


@pytest.mark.parametrize("backend", ["HangingKeyring", "HangingInitKeyring"])
def test_hanging_keyring_does_not_hang_tpcloud(env, monkeypatch, backend):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.{backend}")
    store = secret_store(env, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SecretStoreError, match=r"did not answer within 0\.5 s \(locked\?\)") as caught:
        store.get("token")
    assert time.monotonic() - started < 2
    assert caught.value.hint == "unlock it, or use the file store: TPCLOUD_SECRET_STORE=file"
    started = time.monotonic()
    with pytest.raises(SecretStoreError, match="did not answer"):  # no second wait behind a stuck call
        store.update({"token": "x"})
    assert time.monotonic() - started < 0.4


def test_failing_keyring_is_one_line(env, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.BrokenKeyring")
    with pytest.raises(SecretStoreError) as caught:
        secret_store(env).get("token")
    assert str(caught.value) == "the OS keyring failed: OSError: org.freedesktop.DBus.Error.ServiceUnknown"


def test_unloadable_keyring_backend(env, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "no_such_module.Keyring")
    with pytest.raises(SecretStoreError, match="cannot load the OS keyring: ModuleNotFoundError"):
        secret_store(env).get("token")


# -- the Secret Service's short read, and when it hands over to secretstorage ------------------

class _Bus:
    """A session bus whose Secret Service answers each method from ANSWERS: a (signature, body)
    reply, or an error name; it records the methods asked."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def send_and_get_reply(self, message):
        from jeepney import new_error, new_method_return
        from jeepney.low_level import HeaderFields

        member = message.header.fields[HeaderFields.member]
        self.asked.append(member)
        answer = self.answers[member]
        return new_error(message, answer) if isinstance(answer, str) else new_method_return(message, *answer)


def _service(bus: _Bus, slow: list | None = None):
    """A tpcloud SecretService on BUS; the items secretstorage would find (the long way) are SLOW."""
    from tpcloud.secretservice import SecretService

    service = SecretService.__new__(SecretService)
    service._connection, service._collection, service._session = bus, None, None
    service._items = lambda *_: slow or []  # type: ignore[method-assign]
    return service


ITEM = "/org/freedesktop/secrets/collection/login/7"


def test_a_secret_is_read_in_one_search_one_plain_session_and_one_get():
    bus = _Bus({"SearchItems": ("ao", ([ITEM],)), "OpenSession": ("vo", (("s", ""), "/s/1")),
                "GetSecrets": ("a{o(oayays)}", ({ITEM: ("/s/1", b"", b'{"token": "t"}', "text/plain")},))})
    service = _service(bus)
    assert service.get_password("tpcloud", "secrets") == '{"token": "t"}'
    assert service.get_password("tpcloud", "secrets") == '{"token": "t"}'
    assert bus.asked == ["SearchItems", "OpenSession", "GetSecrets", "SearchItems", "GetSecrets"]  # one session


def test_nothing_stored_is_none_after_the_search_alone():
    bus = _Bus({"SearchItems": ("ao", ([],))})
    assert _service(bus).get_password("tpcloud", "secrets") is None and bus.asked == ["SearchItems"]


class _Item:
    def is_locked(self) -> bool:
        return False

    def get_secret(self) -> bytes:
        return b"the long way"


@pytest.mark.parametrize("answers", [
    {"SearchItems": "org.freedesktop.Secret.Error.NoSuchObject"},  # no default collection
    {"SearchItems": ("ao", ([ITEM],)), "OpenSession": "org.freedesktop.DBus.Error.NotSupported"},  # no "plain"
    {"SearchItems": ("ao", ([ITEM],)), "OpenSession": ("vo", (("s", ""), "/s/1")),
     "GetSecrets": "org.freedesktop.Secret.Error.IsLocked"},
    {"SearchItems": ("ao", ([ITEM],)), "OpenSession": ("vo", (("s", ""), "/s/1")),
     "GetSecrets": ("a{o(oayays)}", ({},))},  # a locked item left out of the answer
], ids=["no-default-collection", "plain-refused", "locked-error", "locked-left-out"])
def test_what_the_short_read_cannot_settle_goes_the_long_way(answers):
    assert _service(_Bus(answers), slow=[_Item()]).get_password("tpcloud", "secrets") == "the long way"
