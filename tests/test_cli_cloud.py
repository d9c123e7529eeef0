"""The cloud path end to end: `tpcloud` as a process against the fake TP-Link cloud."""

from __future__ import annotations

import json
import stat
import time

from tests.conftest import PASSWORD, USERNAME, one_line


# -- project basics --------------------------------------------------------------------------


def test_help_and_version(cli):
    result = cli("--help")
    assert result.code == 0
    for command in ("login", "logout", "list", "switch", "state", "send"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout
    version = cli("--version")
    assert version.code == 0 and version.stdout.startswith("tpcloud ")


# -- login -----------------------------------------------------------------------------------


def test_login_with_password_on_stdin_uses_the_file_store(cli, fake_cloud):
    result = cli.login()
    assert f"Logged in as {USERNAME}" in result.stdout
    assert "file store" in result.stdout and "not encrypted" in result.stdout
    login = fake_cloud.last("login")
    assert login.params["refreshTokenNeeded"] is True
    assert login.params["cloudUserName"] == USERNAME
    secrets_file = cli.config_dir / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config_dir.stat().st_mode) == 0o700


def test_terminal_uuid_is_made_once_and_kept_across_logins(cli, fake_cloud):
    cli.login()
    cli.login()
    uuids = [r.params["terminalUUID"] for r in fake_cloud.calls("login")]
    assert len(uuids) == 2 and uuids[0] == uuids[1] and len(uuids[0]) == 36


def test_login_reads_credentials_from_the_environment(cli, fake_cloud):
    result = cli("login", env={"TPCLOUD_USERNAME": USERNAME, "TPCLOUD_PASSWORD": PASSWORD})
    assert result.code == 0, result
    assert fake_cloud.count("login") == 1


def test_login_without_a_tty_and_without_credentials_fails_at_once(cli, fake_cloud):
    started = time.monotonic()
    no_user = cli("login")
    no_password = cli("login", "--username", USERNAME)
    assert time.monotonic() - started < 20
    assert no_user.code == 2 and "no username" in one_line(no_user.stderr)
    assert no_password.code == 2 and "no password" in one_line(no_password.stderr)
    assert fake_cloud.count("login") == 0


def test_there_is_no_password_option(cli):
    result = cli("login", "--username", USERNAME, "--password", PASSWORD)
    assert result.code == 2
    assert PASSWORD not in result.output


def test_wrong_password_is_one_line_and_exit_3(cli, fake_cloud):
    result = cli("login", "-u", USERNAME, "--password-stdin", input="wrong-password\n")
    assert result.code == 3
    assert "incorrect e-mail or password" in one_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert not (cli.config_dir / "secrets.json").exists() or "token" not in (cli.config_dir / "secrets.json").read_text()


def test_unknown_account(cli, fake_cloud):
    result = cli("login", "-u", "nobody@example.com", "--password-stdin", input="x\n")
    assert result.code == 3 and "no TP-Link account" in one_line(result.stderr)


def test_accounts_needing_2_step_verification_are_told_why(tmp_path):
    from tests.conftest import Cli
    from tests.doubles.cloud.v1 import FakeCloud

    with FakeCloud(mfa_required=True) as cloud:
        home = tmp_path / "h"
        home.mkdir()
        result = Cli(home, cloud.url)("login", "--api", "v1", "-u", USERNAME, "--password-stdin", input=PASSWORD + "\n")
    assert result.code == 3 and "2-step verification" in one_line(result.stderr)


def test_commands_before_login_say_to_log_in(cli, populated_cloud):
    result = cli("list")
    assert result.code == 3
    assert "tpcloud login" in one_line(result.stderr)


def test_encrypted_file_store_with_a_passphrase(cli, populated_cloud):
    env = {"TPCLOUD_PASSPHRASE": "correct horse battery staple"}
    result = cli.login(env=env)
    assert "encrypted" in result.stdout and "not encrypted" not in result.stdout
    raw = (cli.config_dir / "secrets.json").read_bytes()
    for secret in [PASSWORD, *populated_cloud.issued_tokens]:
        assert secret.encode() not in raw
    assert cli("list", "--refresh", env=env).code == 0
    without = cli("list", "--refresh")
    assert without.code == 9 and "TPCLOUD_PASSPHRASE" in one_line(without.stderr)
    wrong = cli("list", "--refresh", env={"TPCLOUD_PASSPHRASE": "wrong"})
    assert wrong.code == 9
    assert (cli.config_dir / "secrets.json").read_bytes() == raw


# -- list ------------------------------------------------------------------------------------


def test_list_shows_every_device_with_its_app_server(account, populated_cloud):
    result = account("list")
    assert result.code == 0, result
    out = result.stdout
    for alias in ("Desk Lamp", "Office Strip", "Hall Bulb", "Tapo Plug", "Garage"):
        assert alias in out
    for outlet in ("Monitor", "Printer", "Charger"):
        assert outlet in out
    assert populated_cloud.regional_url in out and populated_cloud.url in out
    assert "HS103(US)" in out and "P110(EU)" in out


def test_list_json_has_a_stable_shape(account, populated_cloud):
    rows = json.loads(account("list", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name["Desk Lamp"]) == {
        "name", "model", "type", "online", "device_id", "mac", "app_server_url", "lan_address", "lan_wire", "outlets"
    }
    assert by_name["Tapo Plug"]["type"] == "SMART.TAPOPLUG"  # alias arrived base64 and was decoded
    assert by_name["Garage"]["online"] is False
    assert by_name["Desk Lamp"]["app_server_url"] == populated_cloud.regional_url
    assert [o["name"] for o in by_name["Office Strip"]["outlets"]] == ["Monitor", "Printer", "Charger"]


def test_list_is_cached_without_secrets_and_refresh_forces_a_fetch(account, populated_cloud):
    account("list")
    account("list")
    assert populated_cloud.count("getDeviceList") == 1
    account("list", "--refresh")
    assert populated_cloud.count("getDeviceList") == 2
    cache = (account.cache_dir / "devices.json").read_text()
    for secret in populated_cloud.secrets():
        assert secret not in cache
    assert PASSWORD not in cache


# -- switch, state, send ---------------------------------------------------------------------


def test_switch_goes_to_the_devices_app_server_and_needs_no_list_when_cached(account, populated_cloud):
    lamp = populated_cloud.by_alias["Desk Lamp"]
    lamp.set_state(True)
    account("list")
    populated_cloud.clear_requests()
    result = account("switch", "Desk Lamp", "off")
    assert result.code == 0, result
    assert result.stdout.strip() == "Desk Lamp: off"
    assert lamp.is_on() is False
    assert populated_cloud.count("getDeviceList") == 0
    (passthrough,) = populated_cloud.calls("passthrough")
    assert passthrough.server == "regional"
    assert json.loads(passthrough.params["requestData"]) == {"system": {"set_relay_state": {"state": 0}}}


def test_switch_by_any_case_alias_or_device_id(account, populated_cloud):
    lamp = populated_cloud.by_alias["Desk Lamp"]
    assert account("switch", "desk lamp", "on").code == 0 and lamp.is_on()
    assert account("switch", lamp.device_id.lower(), "off").code == 0 and not lamp.is_on()


def test_switch_a_strip_outlet_changes_only_that_outlet(account, populated_cloud):
    strip = populated_cloud.by_alias["Office Strip"]
    for index in range(3):
        strip.set_state(False, child_index=index)
    result = account("switch", "Office Strip/Printer", "on")
    assert result.code == 0, result
    assert result.stdout.strip() == "Office Strip/Printer: on"
    assert [strip.is_on(i) for i in range(3)] == [False, True, False]
    assert account("switch", "charger", "on").code == 0
    assert [strip.is_on(i) for i in range(3)] == [False, True, True]
    request = json.loads(populated_cloud.last("passthrough").params["requestData"])
    assert request["context"] == {"child_ids": [strip.child_ids[2]]}
    assert populated_cloud.last("passthrough").server == "login"


def test_toggle_reads_the_state_first(account, populated_cloud):
    lamp = populated_cloud.by_alias["Desk Lamp"]
    lamp.set_state(True)
    assert account("switch", "Desk Lamp", "toggle").stdout.strip() == "Desk Lamp: off"
    assert not lamp.is_on()
    assert account("switch", "Desk Lamp", "toggle").stdout.strip() == "Desk Lamp: on"
    assert lamp.is_on()


def test_switch_a_bulb_through_its_lighting_service(account, populated_cloud):
    bulb = populated_cloud.by_alias["Hall Bulb"]
    assert account("switch", "Hall Bulb", "on").code == 0
    assert bulb.is_on()
    request = json.loads(populated_cloud.last("passthrough").params["requestData"])
    assert "smartlife.iot.smartbulb.lightingservice" in request


def test_switch_json_output(account, populated_cloud):
    data = json.loads(account("switch", "Desk Lamp", "on", "--json").stdout)
    assert data["name"] == "Desk Lamp" and data["on"] is True and data["state"] == "on" and data["route"] == "cloud"
    assert data["device_id"] == populated_cloud.by_alias["Desk Lamp"].device_id


def test_verbose_switch_names_the_route(account, populated_cloud):
    result = account("-v", "switch", "Desk Lamp", "on")
    assert result.stdout.strip() == "Desk Lamp: on (via cloud)"


def test_state_is_readable_and_json_is_the_raw_reply(account, populated_cloud):
    populated_cloud.by_alias["Office Strip"].set_state(True, child_index=0)
    text = account("state", "Office Strip").stdout
    assert "Office Strip:" in text and "model: KP303(US)" in text
    assert "outlet Monitor: on" in text and "outlet Printer:" in text
    raw = json.loads(account("state", "Office Strip", "--json").stdout)
    assert raw["model"] == "KP303(US)" and len(raw["children"]) == 3
    outlet = account("state", "Office Strip/Monitor").stdout
    assert outlet.startswith("Monitor: on")


def test_send_a_raw_request(account, populated_cloud):
    result = account("send", "Desk Lamp", '{"system":{"get_sysinfo":{}}}')
    assert result.code == 0
    assert json.loads(result.stdout)["system"]["get_sysinfo"]["model"] == "HS103(US)"
    # A module the device lacks: the raw reply still prints, with its err_code.
    reply = json.loads(account("send", "Desk Lamp", '{"no.such.module":{"x":{}}}').stdout)
    assert reply["no.such.module"]["err_code"] == -1


def test_send_rejects_malformed_json_before_any_network(account, populated_cloud):
    populated_cloud.clear_requests()
    result = account("send", "Desk Lamp", '{"system":')
    assert result.code == 2 and "not a JSON object" in one_line(result.stderr)
    assert populated_cloud.count() == 0


# -- names -----------------------------------------------------------------------------------


def test_unknown_name_refreshes_once_then_suggests(account, populated_cloud):
    account("list")
    populated_cloud.clear_requests()
    result = account("switch", "Desk Lmp", "on")
    assert result.code == 4
    line = one_line(result.stderr)
    assert 'no device named "Desk Lmp"' in line and '"Desk Lamp"' in line
    assert populated_cloud.count("getDeviceList") == 1


def test_a_device_added_since_the_cache_is_found_after_one_refresh(account, populated_cloud):
    account("list")
    populated_cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "New Plug")
    result = account("switch", "New Plug", "on")
    assert result.code == 0 and populated_cloud.by_alias["New Plug"].is_on()


def test_an_ambiguous_name_lists_the_candidates(account, populated_cloud):
    populated_cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "desk lamp")
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 4
    line = one_line(result.stderr)
    assert "matches 2 devices" in line and populated_cloud.by_alias["desk lamp"].device_id in line


# -- device errors ---------------------------------------------------------------------------


def test_tapo_devices_answer_offline_through_the_cloud(account, populated_cloud):
    result = account("switch", "Tapo Plug", "on", "--via", "cloud")
    assert result.code == 6
    line = one_line(result.stderr)
    assert "Tapo Plug" in line and "-20571" in line


def test_a_tapo_device_not_on_the_lan_says_what_was_tried(account, populated_cloud):
    account("list")
    populated_cloud.clear_requests()
    result = account("switch", "Tapo Plug", "on")
    assert result.code == 6
    line = one_line(result.stderr)
    assert "no route worked" in line and "discovery" in line and "127.0.0.1" in line
    assert populated_cloud.count("passthrough") == 0  # the cloud never reaches Tapo devices


def test_an_offline_kasa_device(account, populated_cloud):
    result = account("switch", "Garage", "on")
    assert result.code == 6 and "Garage" in one_line(result.stderr)


def test_a_device_removed_from_the_account_refreshes_the_cache_and_stops(account, populated_cloud):
    account("list")
    populated_cloud.remove_device(populated_cloud.by_alias["Porch Dimmer"])
    populated_cloud.clear_requests()
    gone = account("switch", "Porch Dimmer", "on")
    assert gone.code == 4 and "Porch Dimmer" in one_line(gone.stderr)
    assert populated_cloud.count("getDeviceList") == 1
    assert "Porch Dimmer" not in account("list").stdout


# -- a person at a terminal, and a keyring nobody can unlock ----------------------------------


def test_login_prompts_on_a_terminal_with_the_password_hidden(cli, fake_cloud):
    from tests.terminal import Answer, run_on_terminal

    code, transcript = run_on_terminal(["login"], cli.env, [
        Answer(b"e-mail", lambda: USERNAME), Answer(b"Password", lambda: PASSWORD, hidden=True),
    ])
    assert code == 0, transcript
    assert b"Logged in as" in transcript
    assert PASSWORD.encode() not in transcript  # not echoed
    assert fake_cloud.count("login") == 1


def test_a_keyring_that_never_answers_does_not_hang_the_tool(cli, populated_cloud):
    env = {"PYTHON_KEYRING_BACKEND": "tests.test_secrets.HangingKeyring"}
    started = time.monotonic()
    result = cli("list", "--refresh", env=env)
    assert time.monotonic() - started < 20
    assert result.code == 9 and "keyring" in one_line(result.stderr)


def test_every_cloud_request_carries_the_apps_parameters_and_user_agent(account, populated_cloud):
    # piekstra/tplink-cloud-api, which runs against the real cloud, calls the app's parameters
    # required (its issues #83, #84) and introduces itself as the Android app does.
    assert account("list", "--refresh").code == 0
    requests = populated_cloud.calls()
    assert {r.method for r in requests} >= {"login", "getDeviceList"}
    terminals = {r.query.get("termID") for r in requests}
    assert len(terminals) == 1 and None not in terminals  # one terminal, on every request
    login = populated_cloud.calls("login")[0]
    assert login.params["terminalUUID"] in terminals
    for r in requests:
        assert (r.query["appName"], r.query["netType"]) == ("Kasa_Android", "wifi")
        assert r.headers["User-Agent"].startswith("Dalvik/2.1.0 (Linux; U; Android")
