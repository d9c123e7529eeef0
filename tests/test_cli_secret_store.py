"""The secret store as a user meets it: `tpcloud` as a process, with the store chosen and
remembered as on a headless box, and against a real Secret Service (gnome-keyring-daemon on a
private D-Bus session bus, tests/secret_service.py) as on a Linux desktop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import all_at_once, one_line
from tests.secret_service import secret_service

SECRET_SERVICE = "keyring.backends.SecretService.Keyring"
# No OS keyring, as in cron or Termux: neither the test environment's fail keyring nor a session bus.
HEADLESS = {"PYTHON_KEYRING_BACKEND": None, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}


def keyring_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "keyring" or m.startswith("keyring."))


def remembered(cli) -> dict | None:
    path = cli.config_dir / "store.json"
    return json.loads(path.read_text()) if path.exists() else None


# -- the file store, remembered ---------------------------------------------------------------


@pytest.fixture
def headless(cli):
    for name, value in HEADLESS.items():
        cli.env.pop(name, None)
        if value is not None:
            cli.env[name] = value
    return cli


def test_login_remembers_the_file_store_and_later_commands_never_import_keyring(headless, populated_cloud):
    assert "file store" in headless.login().stdout
    assert remembered(headless) == {"store": "file"}
    assert (headless.config_dir / "store.json").stat().st_mode & 0o777 == 0o600
    result, modules = headless.loaded_modules("switch", "Desk Lamp", "off")  # the cloud route: reads the token
    assert result.code == 0 and result.stdout == "Desk Lamp: off\n", result
    assert keyring_modules(modules) == []


def test_an_upgrade_probes_once_then_remembers_the_file_store(headless, populated_cloud):
    headless.login()
    (headless.config_dir / "store.json").unlink()  # as an older tpcloud left it
    first, modules = headless.loaded_modules("list", "--refresh")
    assert first.code == 0 and "keyring" in modules
    assert remembered(headless) == {"store": "file"}
    second, modules = headless.loaded_modules("list", "--refresh")
    assert second.code == 0 and keyring_modules(modules) == []


@pytest.mark.parametrize("content", ["{garbled", '{"store": "vault"}', "\x00\x01"])
def test_a_garbled_remembered_choice_breaks_nothing(headless, populated_cloud, content):
    headless.login()
    (headless.config_dir / "store.json").write_text(content)
    result = headless("-v", "list", "--refresh")
    assert result.code == 0, result
    assert "store.json is unreadable" in result.stderr and "taking it as nothing remembered" in result.stderr
    assert remembered(headless) == {"store": "file"}  # the probe's answer replaced it


# -- a real Secret Service --------------------------------------------------------------------


@pytest.fixture
def service():
    with secret_service() as running:
        yield running


@pytest.fixture
def desktop(cli, service):
    """A user at a Linux desktop: keyring finds the Secret Service on the session bus."""
    cli.env.pop("PYTHON_KEYRING_BACKEND")
    cli.env.update(service.env)
    return cli


def secrets_item(service) -> dict:
    items = service.items()
    assert list(items) == ["secrets"], list(items)
    return json.loads(items["secrets"])


def test_login_list_switch_logout_with_the_os_keyring(desktop, service, populated_cloud):
    assert "Secrets are kept in the OS keyring (SecretService)" in desktop.login().stdout
    assert remembered(desktop) == {"store": "keyring", "backend": SECRET_SERVICE}
    stored = secrets_item(service)
    assert set(stored) == {"token", "refresh_token", "terminal_uuid", "username", "password", "cloud_api"}
    assert not (desktop.config_dir / "secrets.json").exists()
    assert desktop("list").code == 0
    switched = desktop("switch", "Desk Lamp", "off")
    assert switched.code == 0 and switched.stdout == "Desk Lamp: off\n", switched
    assert not populated_cloud.by_alias["Desk Lamp"].is_on()
    assert desktop("logout").code == 0
    assert service.items() == {}
    assert desktop("list", "--refresh").code == 3


def test_a_command_reads_the_item_once_through_the_secret_service_alone(desktop, service, populated_cloud):
    desktop.login()  # keyring's probe finds the Secret Service; keyring's backend writes the item
    assert desktop("list").code == 0  # a warm cache: the switch only reads the token
    with service.calls("GetSecrets") as reads, service.calls("GetSecret") as item_reads, \
            service.calls("SearchItems") as searches, service.calls("OpenSession") as sessions, \
            service.calls("Hello") as connections:
        result, modules = desktop.loaded_modules("switch", "Desk Lamp", "on")
    assert result.code == 0, result
    assert reads == ["org.freedesktop.Secret.Service"] and item_reads == []
    assert searches == ["org.freedesktop.Secret.Collection"] and len(sessions) == 1 and len(connections) == 1
    # No backend was probed, and keyring itself was not loaded: the remembered Secret Service is
    # read over jeepney alone (tpcloud.secretservice), in a plain session (no cryptography, no
    # secretstorage), and it read what keyring wrote.
    assert keyring_modules(modules) == [] and "jeepney" in modules
    assert not any(m.split(".")[0] in ("secretstorage", "cryptography") for m in modules)
    assert populated_cloud.by_alias["Desk Lamp"].is_on()


def test_what_tpcloud_writes_to_the_secret_service_keyring_reads(desktop, service, populated_cloud):
    desktop.login()
    before = secrets_item(service)
    populated_cloud.expire_tokens()
    with service.calls("CreateItem") as writes:  # the renewal, written without keyring
        result, modules = desktop.loaded_modules("list", "--refresh")
    assert result.code == 0, result
    assert keyring_modules(modules) == [] and len(writes) == 1
    with service.keyring() as backend:  # keyring's own backend reads what was written
        renewed = json.loads(backend.get_password("tpcloud", "secrets"))
    assert renewed["token"] != before["token"] and renewed["username"] == before["username"]
    assert list(service.items()) == ["secrets"]


def test_an_upgrade_from_one_item_per_name_keeps_the_user_logged_in(desktop, service, populated_cloud):
    desktop.login()
    secrets = secrets_item(service)
    # What an older tpcloud left: one item per name, and no store.json.
    with service.keyring() as old_tpcloud:
        old_tpcloud.delete_password("tpcloud", "secrets")
        for name, value in secrets.items():
            old_tpcloud.set_password("tpcloud", name, value)
    (desktop.config_dir / "store.json").unlink()
    assert set(service.items()) == set(secrets)
    populated_cloud.clear_requests()

    result = desktop("-v", "list", "--refresh")
    assert result.code == 0, result
    assert "moved 6 secrets from one OS keyring item each into the item tpcloud/secrets" in result.stderr
    assert populated_cloud.count("login") == 0 and populated_cloud.count("getDeviceList") == 1  # the token was used
    assert secrets_item(service) == secrets  # the old items are gone
    assert remembered(desktop) == {"store": "keyring", "backend": SECRET_SERVICE}
    assert desktop("switch", "Desk Lamp", "off").code == 0
    assert populated_cloud.count("login") == 0


@pytest.mark.parametrize("content", ["not json", '["token"]', '{"token": 42}'])
def test_a_malformed_item_is_one_clear_error_and_changes_nothing(desktop, service, populated_cloud, content):
    desktop.login()
    with service.keyring() as other_program:
        other_program.set_password("tpcloud", "secrets", content)
    for args in (("list", "--refresh"), ("login", "--username", "user@example.com", "--password-stdin")):
        result = desktop(*args, input="hunter2-Secret!\n")
        assert result.code == 9, result
        assert one_line(result.stderr) == (
            "tpcloud: the OS keyring item tpcloud/secrets is unreadable (not a JSON object of names to strings); "
            "it was left untouched (`tpcloud logout` deletes it; then `tpcloud login`)"
        )
    assert service.items() == {"secrets": content}
    assert desktop("logout").code == 0 and service.items() == {}
    desktop.login()


@pytest.mark.parametrize(("stop", "error"), [
    ("lock", "the OS keyring is locked"),  # unlocking needs a prompt nobody can answer: dismissed
    ("freeze", "the OS keyring did not answer within 5 s (locked?)"),  # a daemon that never answers
])
def test_a_locked_or_stopped_keyring_is_one_line_and_never_a_hang(desktop, service, populated_cloud, stop, error):
    desktop.login()
    getattr(service, stop)()
    started = time.monotonic()
    result = desktop("switch", "Desk Lamp", "on")
    assert time.monotonic() - started < 20
    assert result.code == 9, result
    assert one_line(result.stderr) == f"tpcloud: {error} (unlock it, or use the file store: TPCLOUD_SECRET_STORE=file)"


def test_a_remembered_backend_that_cannot_be_loaded_is_probed_for_and_replaced(desktop, service, populated_cloud):
    desktop.login()
    (desktop.config_dir / "store.json").write_text('{"store": "keyring", "backend": "keyrings.gone.Keyring"}')
    result = desktop("-v", "list", "--refresh")
    assert result.code == 0, result
    assert "the remembered OS keyring keyrings.gone.Keyring is not usable here (ModuleNotFoundError" in result.stderr
    assert remembered(desktop) == {"store": "keyring", "backend": SECRET_SERVICE}


def test_python_keyring_backend_still_decides_and_the_memory_stays(desktop, service, populated_cloud):
    desktop.login()
    before = (desktop.config_dir / "store.json").read_bytes()
    fail = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    assert desktop("list", "--refresh", env=fail).code == 3  # the file store, where no session is
    assert desktop("login", "--username", "user@example.com", "--password-stdin", input="hunter2-Secret!\n",
                   env=fail).code == 0
    assert (desktop.config_dir / "store.json").read_bytes() == before
    assert desktop("list", "--refresh").code == 0  # the keyring's session, untouched


def test_doctor_shows_the_remembered_keyring_and_the_probe_agreeing(desktop, service, populated_cloud):
    desktop.login()
    result = desktop("doctor", "--json")
    found = {c["check"]: c for c in json.loads(result.stdout)}
    assert found["secret store"] == {"check": "secret store", "status": "ok", "detail": "OS keyring (SecretService)",
                                     "fix": None}
    assert found["store choice"]["detail"] == (
        f"the OS keyring ({SECRET_SERVICE}) is remembered in {desktop.config_dir / 'store.json'}; "
        "a fresh probe finds the same"
    )
    for secret in populated_cloud.secrets():
        assert secret not in result.output


WRITER = """
import sys, time
from pathlib import Path
from tpcloud.config import Settings
from tpcloud.secrets import SecretStore
config, name, count, go = sys.argv[1:]
store = SecretStore(Settings.from_env({"TPCLOUD_SECRET_STORE": "keyring", "XDG_CONFIG_HOME": config}))
while not Path(go).exists():
    time.sleep(0.005)
for i in range(int(count)):
    store.update({name: str(i)})
"""


def test_concurrent_changes_to_the_item_lose_no_update(desktop, service, tmp_path):
    go = tmp_path / "go"
    names = ["token", "refresh_token", "username", "password", "cloud_api", "cloud_url"]
    all_at_once([[WRITER, str(desktop.home / "config"), name, "5", str(go)] for name in names], desktop.env, go)
    assert secrets_item(service) == dict.fromkeys(names, "4")


def test_jobs_renewing_the_token_together_keep_one_session(desktop, service, populated_cloud):
    desktop.login()
    assert desktop("list").code == 0
    populated_cloud.invalidate_used_refresh_tokens = True  # a lost update would keep a dead refresh token
    populated_cloud.expire_tokens()
    populated_cloud.clear_requests()
    jobs = [subprocess.Popen([sys.executable, "-m", "tpcloud", "switch", "Desk Lamp", "on"], env=desktop.env,
                             cwd=desktop.home, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(6)]
    results = [(*job.communicate(timeout=120), job.returncode) for job in jobs]
    assert [code for _, _, code in results] == [0] * 6, results
    assert populated_cloud.count("refreshToken") == 1 and populated_cloud.count("login") == 0
    populated_cloud.expire_tokens()
    assert desktop("switch", "Desk Lamp", "off").code == 0  # the refresh token stored is the live one
    assert populated_cloud.count("login") == 0
