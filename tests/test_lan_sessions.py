"""KLAP and AES sessions kept between commands: `tpcloud` as a process against the emulated home.

A command that finds a live saved session sends its one request and nothing else; a session the
device no longer honours costs one new handshake, after which the new session is the saved one.
The session's keys are secrets: in the secret store only, never in the cache or in any output.
"""

from __future__ import annotations

import json

import pytest

from tpcloud.config import Settings
from tpcloud.filestore import FileStore
from tpcloud.lan.sessions import NAME, SessionStore
from tpcloud.redact import Redactor
from tpcloud.secrets import SERVICE, SecretStore

# The `home` and `user` fixtures (tests/doubles/home.py): the emulated home, and a user of it.
ENCRYPTED = {"Living Room": "klap", "Hallway": "klap", "Bedroom": "aes"}
# A handshake and the request it was made for: KLAP handshake1 + handshake2, AES handshake +
# login_device; then the request.
WITH_HANDSHAKE = 3


def saved_sessions(cli) -> dict:
    raw = FileStore(cli.config_dir / "secrets.json", "").entries(SERVICE).get(NAME)
    return json.loads(raw) if raw else {}


def session_of(cli, home, name: str) -> dict:
    server = home.servers[name]
    return saved_sessions(cli)[f"{ENCRYPTED[name]} {server.host}:{server.port}"]


def secret_values(session: dict) -> list[str]:
    fields = ("key", "iv", "iv_base", "sig", "token")
    return [session[f] for f in fields if f in session] + [session["cookie"][1]]


def learn_addresses(cli) -> None:
    """Cache the device list, then the LAN addresses, without talking to any device yet."""
    assert cli("list").code == 0
    assert cli("discover", "--timeout", "1").code == 0


def requests_for(cli, home, name: str, *args: str) -> int:
    """Run one command; return how many HTTP requests the device's emulator received for it."""
    server = home.servers[name]
    before = server.http_count
    result = cli(*args)
    assert result.code == 0, result
    return server.http_count - before


@pytest.mark.parametrize("name", list(ENCRYPTED))
def test_the_next_command_resumes_the_session_with_one_request(user, home, name):
    learn_addresses(user)
    assert requests_for(user, home, name, "switch", name, "on") == WITH_HANDSHAKE
    home.cloud.clear_requests()
    assert requests_for(user, home, name, "switch", name, "off") == 1
    assert not home.devices[name].is_on()
    assert home.cloud.count() == 0
    assert session_of(user, home, name)["wire"] == ENCRYPTED[name]


@pytest.mark.parametrize(
    "name, drop",
    [
        ("Living Room", lambda server: server.expire_sessions()),
        ("Hallway", lambda server: server.expire_sessions()),
        ("Bedroom", lambda server: server.expire_session(code=9999)),
        ("Bedroom", lambda server: server.expire_session(code=-40401)),
    ],
)
def test_a_session_the_device_dropped_is_replaced_after_one_handshake(user, home, name, drop):
    learn_addresses(user)
    assert requests_for(user, home, name, "switch", name, "on") == WITH_HANDSHAKE
    old = session_of(user, home, name)
    drop(home.servers[name])
    assert requests_for(user, home, name, "switch", name, "off") == 1 + WITH_HANDSHAKE
    assert not home.devices[name].is_on()
    new = session_of(user, home, name)
    assert new["key"] != old["key"] and new["cookie"] != old["cookie"]
    assert requests_for(user, home, name, "switch", name, "on") == 1


@pytest.mark.parametrize("counters", ["restored", "deleted"])
def test_a_klap_sequence_another_command_used_costs_one_handshake(user, home, counters):
    # Two commands resuming the same saved session: the second one's sequence number is spent.
    # The number lives in the cache (lan-counters.json); put back, or lost with the cache, the
    # device refuses the number it has seen, and one handshake follows.
    path = user.cache_dir / "lan-counters.json"
    learn_addresses(user)
    assert requests_for(user, home, "Living Room", "switch", "Living Room", "on") == WITH_HANDSHAKE
    snapshot = path.read_bytes()
    assert requests_for(user, home, "Living Room", "switch", "Living Room", "off") == 1
    if counters == "restored":
        path.write_bytes(snapshot)
    else:
        path.unlink()
    rejected = home.servers["Living Room"].rejected_count
    assert requests_for(user, home, "Living Room", "switch", "Living Room", "on") == 1 + WITH_HANDSHAKE
    assert home.servers["Living Room"].rejected_count == rejected + 1
    assert home.devices["Living Room"].is_on()


def test_a_resumed_session_writes_no_secret_only_its_sequence_number(user, home):
    # With an encrypted file store a write is a fresh scrypt derivation (~0.1 s); with the OS
    # keyring a round trip. A resumed KLAP session moves only its sequence number, which goes to
    # the cache: the secrets file stays byte for byte the same over many commands.
    user.env["TPCLOUD_PASSPHRASE"] = "a passphrase"
    learn_addresses(user)
    assert requests_for(user, home, "Living Room", "switch", "Living Room", "on") == WITH_HANDSHAKE
    store, counters = user.config_dir / "secrets.json", user.cache_dir / "lan-counters.json"
    before = store.read_bytes()
    seqs = []
    for action in ("off", "on", "toggle"):
        assert requests_for(user, home, "Living Room", "switch", "Living Room", action) <= 2
        seqs.append(next(iter(json.loads(counters.read_text()).values()))["seq"])
    assert store.read_bytes() == before
    assert seqs == sorted(set(seqs)) and not home.devices["Living Room"].is_on()
    assert home.servers["Living Room"].rejected_count == 0


def test_session_keys_appear_in_no_output_and_no_cache_file(user, home):
    learn_addresses(user)
    outputs = []
    for name in ("Living Room", "Bedroom"):
        outputs.append(user("-v", "switch", name, "on"))
        outputs.append(user("--debug", "switch", name, "toggle"))
        outputs.append(user("-v", "send", name, '{"method":"get_device_info"}'))
    secrets = [v for name in ("Living Room", "Bedroom") for v in secret_values(session_of(user, home, name))]
    # a resumed session the device drops, then a refused handshake: a traceback under --debug
    server = home.servers["Living Room"]
    server.expire_sessions()
    server.reject_all_auth = True
    failed = user("--debug", "switch", "Living Room", "off", "--via", "local")
    assert failed.code == 3 and "Traceback" in failed.stderr
    outputs.append(failed)
    assert all(r.code in (0, 3) for r in outputs)
    text = "".join(r.output for r in outputs)
    assert "> klap" in text and "> aes" in text  # -v did show the exchanges
    cached = b"".join(p.read_bytes() for p in user.cache_dir.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret not in text
        assert secret.encode() not in cached
    assert list(saved_sessions(user)) == [f"aes {home.servers['Bedroom'].host}:{home.servers['Bedroom'].port}"]


def test_logout_forgets_the_sessions(user, home):
    learn_addresses(user)
    assert user("switch", "Bedroom", "on").code == 0
    assert saved_sessions(user)
    assert user("logout").code == 0
    assert saved_sessions(user) == {}


def test_saving_keeps_other_devices_live_sessions_and_drops_expired_ones(tmp_path):
    env = {"TPCLOUD_SECRET_STORE": "file", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    now = 1_000_000.0
    redactor = Redactor()
    store = SessionStore(SecretStore(Settings.from_env(env)), redactor, clock=lambda: now)
    store.save({"klap a:80": {"expires_at": now + 60, "key": "k" * 32, "cookie": ["TP_SESSIONID", "c" * 32]},
                "aes b:80": {"expires_at": now + 1, "token": "t" * 32}})
    now += 10
    store.save({"klap c:80": {"expires_at": now + 60, "sig": "s" * 56}})
    assert store.load("aes b:80") is None
    assert store.load("klap a:80")["key"] == "k" * 32
    store.save({"klap a:80": None})
    assert store.load("klap a:80") is None and store.load("klap c:80") is not None
    assert redactor.scrub("k" * 32 + " " + "c" * 32 + " " + "t" * 32 + " " + "s" * 56) == "*** *** *** ***"
