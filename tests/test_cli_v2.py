"""The V2 login end to end: `tpcloud` as a process against the fake V1 and V2 clouds.

The account has 2-step verification: V1 answers -23003, so `login` (auto) moves to V2, which
asks for a code. A person types it at a terminal; a script gets exit 10 and comes back with
`login --code`. Then list and switch go through V2 (getDeviceList and passthrough, signed).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORD, USERNAME, Cli, one_line, v2_cli
from tests.doubles.cloud.v1 import FakeCloud
from tests.doubles.cloud.v2 import FakeCloudV2, loopback_tls
from tests.terminal import Answer, run_on_terminal


@pytest.fixture
def mfa_cloud():
    """A V1 cloud that answers -23003 for the account, with a lamp, a strip and a Tapo plug."""
    with FakeCloud(mfa_required=True) as cloud:
        cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
        cloud.add_iot_device("KP303(US)_2.0_1.0.9.json", "Office Strip", region="login",
                             child_aliases=["Monitor", "Printer", "Charger"])
        cloud.add_iot_device("HS220(US)_1.0_1.5.7.json", "Porch Dimmer")
        cloud.add_smart_device("P110(EU)_1.0_1.2.3.json", "Tapo Plug")
        cloud.add_smart_device("P100(US)_1.0.0_1.4.0.json", "Fan Plug")
        yield cloud


def _login(cli: Cli, *extra: str) -> object:
    return cli("login", "-u", USERNAME, "--password-stdin", *extra, input=PASSWORD + "\n")


def _assert_no_secrets(cloud: FakeCloud, v2: FakeCloudV2, *texts: str) -> None:
    for text in texts:
        cloud.assert_no_secrets(text)
        for _, code in v2.codes_sent:
            assert code not in text


@pytest.mark.parametrize("shape", ["nested", "top"])
def test_a_script_logs_in_in_two_steps_then_lists_and_switches(tmp_path, mfa_cloud, shape):
    with FakeCloudV2(mfa_cloud, mfa=shape) as v2:
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        first = _login(cli)
        assert first.code == 10, first
        assert "code was sent by e-mail" in one_line(first.stderr) and "tpcloud login --code" in first.stderr
        if shape == "nested":  # -v masks the process id, as it masks the password and tokens
            verbose = cli("-v", "login", "-u", USERNAME, "--password-stdin", input=PASSWORD + "\n")
            process_id = v2.calls("/account/login")[-1].reply["result"]["MFAProcessId"]
            assert verbose.code == 10 and "MFAProcessId" in verbose.stderr and process_id not in verbose.output
            _assert_no_secrets(mfa_cloud, v2, verbose.output)
        assert mfa_cloud.count("login") == len(v2.calls("/account/login"))  # each V1 refusal moved on to V2
        assert {t for t, _ in v2.codes_sent} == {2}
        assert cli("list").code == 3  # no session yet: the old one, if any, is untouched

        done = cli("login", "--code", v2.last_code())
        assert done.code == 0, done
        assert f"Logged in as {USERNAME}" in done.stdout

        listed = cli("list", "--json")
        assert listed.code == 0, listed
        rows = {row["name"]: row for row in json.loads(listed.stdout)}
        assert set(rows) == {"Desk Lamp", "Office Strip", "Porch Dimmer", "Tapo Plug", "Fan Plug"}
        assert rows["Tapo Plug"]["type"] == "SMART.TAPOPLUG" and rows["Tapo Plug"]["model"] == "P110(EU)"
        assert [o["name"] for o in rows["Office Strip"]["outlets"]] == ["Monitor", "Printer", "Charger"]
        # One signed getDeviceList on the regional server, as the Kasa app's keys list devices.
        assert [(r.server, r.body) for r in v2.requests if r.path == "/" and r.body.get("method") == "getDeviceList"] \
            == [("regional", {"method": "getDeviceList"})]

        lamp = mfa_cloud.by_alias["Desk Lamp"]
        lamp.set_state(True)
        switched = cli("switch", "Desk Lamp", "off", "--via", "cloud")
        assert switched.code == 0, switched
        assert switched.stdout.strip() == "Desk Lamp: off" and not lamp.is_on()
        strip = mfa_cloud.by_alias["Office Strip"]
        assert cli("switch", "Office Strip/Printer", "on", "--via", "cloud").code == 0 and strip.is_on(1)
        passthroughs = [r for r in v2.requests if r.path == "/" and r.body["method"] != "getDeviceList"]
        assert passthroughs and all(r.body["method"] == "passthrough" for r in passthroughs)
        assert {r.server for r in passthroughs} == {"regional", "login"}  # each device's own server
        assert all(r.signed for r in v2.requests)
        assert mfa_cloud.count("getDeviceList") == 0 and mfa_cloud.count("passthrough") == 0
        _assert_no_secrets(mfa_cloud, v2, first.output, done.output, listed.output, switched.output)


def test_the_refresh_token_keeps_a_job_alive_without_a_new_code(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud, mfa="nested") as v2:
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        assert _login(cli).code == 10
        assert cli("login", "--code", v2.last_code()).code == 0
        mfa_cloud.expire_tokens()
        again = cli("list", "--refresh")
        assert again.code == 0, again
        assert len(v2.calls("refreshToken")) == 1 and len(v2.codes_sent) == 1
        # The refresh token gone too: the stored password logs in again, on this bound terminal, with no code.
        mfa_cloud.expire_tokens()
        mfa_cloud.expire_refresh_tokens()
        assert cli("list", "--refresh").code == 0
        assert len(v2.calls("/account/login")) == 2 and len(v2.codes_sent) == 1


def test_a_push_code_when_the_app_is_the_only_way(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud, mfa="top", mfa_types=(1,)) as v2:
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        first = _login(cli, "--api", "v2")
        assert first.code == 10 and "to the Kasa/Tapo app" in one_line(first.stderr)
        assert [t for t, _ in v2.codes_sent] == [1] and mfa_cloud.count("login") == 0
        refused = _login(cli, "--api", "v2", "--code-via", "email")
        assert refused.code == 2 and "offers: push" in one_line(refused.stderr)


def test_a_wrong_code_is_refused_and_the_right_one_still_works(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud, mfa="nested") as v2:
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        assert _login(cli).code == 10
        wrong = cli("login", "--code", "1234567")
        assert wrong.code == 3 and "verification code was not accepted" in one_line(wrong.stderr)
        assert cli("login", "--code", v2.last_code()).code == 0
        nothing_pending = cli("login", "--code", v2.last_code())
        assert nothing_pending.code == 3 and "no login is waiting" in one_line(nothing_pending.stderr)


def test_a_wrong_region_is_followed_to_the_server_it_names(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud) as v2:
        v2.status_points_to = "login"
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        assert _login(cli).code == 0
        logins = v2.calls("/account/login")
        assert [(r.server, r.reply["error_code"]) for r in logins] == [("login", -20212), ("regional", 0)]
        assert cli("list").code == 0
        assert {r.server for r in v2.requests if r.path == "/" and r.body.get("method") == "getDeviceList"} == {"regional"}


def test_a_redirect_to_a_foreign_host_is_refused(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud) as v2:
        v2.status_points_to = "login"
        v2.redirect_to = "https://n-wap.tplinkcloud.com.evil.example"
        result = _login(cli := v2_cli(tmp_path, mfa_cloud, v2))
        assert result.code == 8
        assert "refusing to send the cloud token to https://n-wap.tplinkcloud.com.evil.example" in one_line(result.stderr)
        assert len(v2.calls("/account/login")) == 1
        assert cli("list").code == 3


def test_a_signature_the_cloud_rejects_is_one_clear_line(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud) as v2:
        v2.secret_key = "not-the-apps-secret"
        result = _login(v2_cli(tmp_path, mfa_cloud, v2), "--api", "v2")
        assert result.code == 8
        line = one_line(result.stderr)
        assert "getAccountStatusAndUrl" in line and "-10000" in line and "Signature verification failed" in line
        assert "Traceback" not in result.stderr


def test_api_v1_stays_on_v1(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud) as v2:
        result = _login(v2_cli(tmp_path, mfa_cloud, v2), "--api", "v1")
        assert result.code == 3 and "--api auto" in one_line(result.stderr)
        assert v2.requests == []


def test_a_v1_account_keeps_using_v1(cli, populated_cloud):
    assert cli.login().code == 0
    assert cli("list").code == 0
    assert populated_cloud.count("getDeviceList") == 1  # the stored API is V1: nothing asked V2


# -- TLS: TP-Link's private CA is trusted besides the system store; verification stays on -------


def test_the_v2_cloud_is_trusted_only_with_its_ca(tmp_path, mfa_cloud):
    server_tls, ca_file = loopback_tls(tmp_path)
    with FakeCloudV2(mfa_cloud, tls=server_tls) as v2:
        assert v2.url.startswith("https://127.0.0.1:")
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        refused = _login(cli, "--api", "v2")
        assert refused.code == 7 and "certificate verify failed" in one_line(refused.stderr)
        assert v2.requests == []
        cli.env["TPCLOUD_CLOUD_V2_CA_FILE"] = str(ca_file)
        trusted = _login(cli, "--api", "v2")
        assert trusted.code == 0, trusted
        assert cli("list").code == 0


def test_a_ca_file_that_is_not_pem_is_named_in_one_line(tmp_path, mfa_cloud):
    server_tls, _ = loopback_tls(tmp_path)
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("hello\n")
    with FakeCloudV2(mfa_cloud, tls=server_tls) as v2:
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        cli.env["TPCLOUD_CLOUD_V2_CA_FILE"] = str(not_pem)
        result = _login(cli, "--api", "v2")
        assert result.code == 2 and "TPCLOUD_CLOUD_V2_CA_FILE" in one_line(result.stderr), result
        assert "Traceback" not in result.stderr and v2.requests == []


# -- a person at a terminal ------------------------------------------------------------------


def test_an_account_with_2_step_verification_logs_in_on_a_terminal(tmp_path, mfa_cloud):
    with FakeCloudV2(mfa_cloud, mfa="nested") as v2:
        cli = v2_cli(tmp_path, mfa_cloud, v2)
        code, transcript = run_on_terminal(["login"], cli.env, [
            Answer(b"e-mail", lambda: USERNAME),
            Answer(b"Password", lambda: PASSWORD, hidden=True),
            # The code is typed once it has been "sent": a person reads it from the e-mail first.
            Answer(b"Verification code", v2.last_code, ready=lambda: bool(v2.codes_sent)),
        ])
        assert code == 0, transcript
        assert b"Verification code (sent by e-mail)" in transcript and b"Logged in as" in transcript
        assert PASSWORD.encode() not in transcript
        assert len(v2.calls("checkMFACodeAndLogin")) == 1
        assert cli("list").code == 0
