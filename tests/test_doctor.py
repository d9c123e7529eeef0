"""`tpcloud doctor` as a process, against the fake cloud and the LAN emulators, in good and broken
states: each check's line, what to do about a problem, and the exit code of the first problem."""

from __future__ import annotations

import json
import time



def checks(result) -> dict[str, dict]:
    return {c["check"]: c for c in json.loads(result.stdout)}


def test_all_well(user, home, populated_cloud):
    assert user("discover", "--timeout", "1").code == 0
    result = user("doctor", "--json")
    assert result.code == 0, result
    found = checks(result)
    assert {name: c["status"] for name, c in found.items()} == {
        "secret store": "ok", "store choice": "ok", "login": "ok", "cache": "ok", "energy archive": "ok", "cloud": "ok",
        **{f"LAN {name}": "ok" for name in home.servers},
    }
    assert "file store" in found["secret store"]["detail"]
    assert found["store choice"]["detail"] == (
        "PYTHON_KEYRING_BACKEND chooses, on every run; a fresh probe finds the file store"
    )
    assert found["login"]["detail"] == "a session is stored for user@example.com, with the password"
    assert found["cloud"]["detail"] == f"answers ({len(populated_cloud.devices)} devices in the account)"
    lamp = home.servers["Desk Lamp"]
    assert found["LAN Desk Lamp"]["detail"] == f"answers at {lamp.host}:9999 (xor)"
    assert found["LAN Bedroom"]["detail"].endswith("(aes)")
    text = user("doctor")
    assert text.code == 0 and len(text.stdout.splitlines()) == 1 + len(found)
    for secret in populated_cloud.secrets():
        assert secret not in text.output + result.output


def test_the_cloud_line_names_the_proxy_it_went_through(user, populated_cloud):
    from tests.doubles.proxy import ForwardProxy

    with ForwardProxy() as proxy:
        result = user("doctor", "--json", env={"http_proxy": proxy.url_with("me", "s3cret")})
        assert result.code == 0, result
        assert checks(result)["cloud"]["detail"] == (
            f"answers ({len(populated_cloud.devices)} devices in the account), through the proxy at {proxy.url}"
        )
        assert proxy.seen and "s3cret" not in result.output


def test_not_logged_in(cli, populated_cloud):
    result = cli("doctor")
    assert result.code == 3, result
    line = next(line for line in result.stdout.splitlines() if line.startswith("problem"))
    assert "login" in line and "run `tpcloud login`" in line
    found = checks(cli("doctor", "--json"))
    assert found["cloud"]["status"] == "skipped" and found["LAN"]["status"] == "skipped"
    assert "tpcloud discover" in found["LAN"]["fix"]
    assert populated_cloud.count() == 0


def test_cloud_down(user, home):
    assert user("discover", "--timeout", "1").code == 0
    home.cloud.stop()
    result = user("doctor", "--json")
    assert result.code == 7, result
    found = checks(result)
    assert found["cloud"]["status"] == "problem" and "internet connection" in found["cloud"]["fix"]
    assert all(c["status"] == "ok" for name, c in found.items() if name.startswith("LAN "))


def test_a_lan_device_gone(user, home):
    assert user("discover", "--timeout", "1").code == 0
    home.servers["Desk Lamp"].stop()
    home.servers["Office Strip"].fault = "silent"  # accepts the connection, never answers
    started = time.monotonic()
    result = user("--timeout", "30", "doctor", "--json")
    assert time.monotonic() - started < 15  # the LAN checks have their own short budget
    assert result.code == 6, result  # the first problem: Desk Lamp unreachable
    found = checks(result)
    assert [name for name, c in found.items() if c["status"] == "problem"] == ["LAN Desk Lamp", "LAN Office Strip"]
    assert "powered" in found["LAN Desk Lamp"]["fix"] and "powered" in found["LAN Office Strip"]["fix"]


def test_a_device_refusing_the_credentials(user, home):
    assert user("discover", "--timeout", "1").code == 0
    home.servers["Living Room"].reject_all_auth = True
    home.servers["Living Room"].expire_sessions()  # so the session kept since discovery is gone too
    result = user("doctor", "--json")
    assert result.code == 3, result
    assert "Third-Party Compatibility" in checks(result)["LAN Living Room"]["fix"]


def test_an_encrypted_store_without_its_passphrase(cli, populated_cloud):
    cli.login(env={"TPCLOUD_PASSPHRASE": "correct horse"})
    result = cli("doctor", "--json")
    assert result.code == 9, result
    found = checks(result)
    assert found["secret store"]["status"] == "problem" and "TPCLOUD_PASSPHRASE" in found["secret store"]["detail"]
    assert found["login"]["status"] == "skipped" and found["cloud"]["status"] == "skipped"


# What the test environment names, and the desktop's D-Bus session, are both missing here.
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": None, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}


def test_the_remembered_store_and_what_a_probe_finds(cli, populated_cloud):
    cli.login(env=NO_KEYRING)
    found = checks(cli("doctor", "--json", env=NO_KEYRING))
    where = cli.config_dir / "store.json"
    assert found["store choice"] == {
        "check": "store choice", "status": "ok", "fix": None,
        "detail": f"the file store is remembered in {where}; a fresh probe finds the same",
    }
    forced = checks(cli("doctor", "--json", env={**NO_KEYRING, "TPCLOUD_SECRET_STORE": "file"}))
    assert forced["store choice"]["detail"] == "TPCLOUD_SECRET_STORE=file chooses; a fresh probe finds the file store"


def test_a_remembered_keyring_this_run_cannot_use_is_a_warning(cli, populated_cloud):
    # A desktop user's keyring remembered, doctor run over ssh: no D-Bus session here.
    cli.login(env=NO_KEYRING)
    where = cli.config_dir / "store.json"
    where.write_text('{"store": "keyring", "backend": "keyring.backends.SecretService.Keyring"}')
    result = cli("doctor", "--json", env=NO_KEYRING)
    assert result.code == 0, result
    found = checks(result)
    assert found["secret store"]["status"] == "ok" and "file store" in found["secret store"]["detail"]
    assert found["login"]["status"] == "ok"
    assert found["store choice"]["status"] == "warning"
    assert found["store choice"]["detail"] == (
        f"the OS keyring (keyring.backends.SecretService.Keyring) is remembered in {where}, "
        "but a fresh probe finds the file store now"
    )
    assert "`tpcloud login`" in found["store choice"]["fix"]
    table = cli("doctor", env=NO_KEYRING).stdout
    assert any(line.startswith("warning") and "store choice" in line for line in table.splitlines())
    assert where.read_text() == '{"store": "keyring", "backend": "keyring.backends.SecretService.Keyring"}'
