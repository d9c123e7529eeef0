"""V2 account errors in both shapes the real cloud uses, as a user meets them.

The real cloud often answers account calls with an outer `error_code` 0 and the failure inside
the result: `result.errorCode` (a string) and `errorMsg` (piekstra/tplink-cloud-cli commit
023b004, `client.rs`; dimme/tapo-cli#3 shows `result.errorCode "-20212"` beside `appServerUrl`),
and asks for a 2-step code with `result.MFAProcessId` alone (ioBroker.tapo, tapo-cli). Each
failure must give the same line and exit code whichever shape carries it.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, USERNAME, Cli, one_line, v2_cli
from tests.doubles.cloud.v1 import FakeCloud
from tests.doubles.cloud.v2 import FakeCloudV2
from tests.terminal import Answer, run_on_terminal

SHAPES = ["top", "nested"]


@pytest.fixture
def cloud():
    with FakeCloud(mfa_required=True) as cloud:
        cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
        yield cloud


def login(cli: Cli, username: str = USERNAME, password: str = PASSWORD):
    return cli("login", "-u", username, "--password-stdin", "--api", "v2", input=password + "\n")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("username, password, refuse, code, words", [
    (USERNAME, "not-the-password", None, 3, "incorrect e-mail or password"),
    ("nobody@example.com", PASSWORD, None, 3, "no TP-Link account has that e-mail address"),
    (USERNAME, PASSWORD, (-20661, "Account is locked"), 3, "locked after too many failed logins"),
], ids=["wrong-password", "unknown-account", "locked"])
def test_a_refused_login_says_why_in_either_shape(tmp_path, cloud, shape, username, password, refuse, code, words):
    with FakeCloudV2(cloud, errors=shape) as v2:
        v2.refuse_login = refuse
        result = login(v2_cli(tmp_path, cloud, v2), username, password)
    assert result.code == code, result
    line = one_line(result.stderr)
    assert words in line and "sent no token" not in line


@pytest.mark.parametrize("shape", SHAPES)
def test_a_region_redirect_is_followed_in_either_shape(tmp_path, cloud, shape):
    with FakeCloudV2(cloud, errors=shape) as v2:
        v2.status_points_to = "login"
        cli = v2_cli(tmp_path, cloud, v2)
        assert login(cli).code == 0
        assert [r.server for r in v2.calls("/account/login")] == ["login", "regional"]
        if shape == "nested":
            assert v2.calls("/account/login")[0].reply == {"error_code": 0, "result": {
                "appServerUrl": v2.regional_url, "errorCode": "-20212", "errorMsg": "Account is in another region"}}
        assert cli("list").code == 0


@pytest.mark.parametrize("mfa_types, how", [((1, 2), "by e-mail"), ((1,), "to the Kasa/Tapo app (push)")])
def test_a_code_asked_for_by_process_id_alone_is_sent_and_finished(tmp_path, cloud, mfa_types, how):
    with FakeCloudV2(cloud, mfa="process_id", mfa_types=mfa_types) as v2:
        cli = v2_cli(tmp_path, cloud, v2)
        first = login(cli)
        assert first.code == 10, first
        assert f"a 2-step verification code was sent {how}" in one_line(first.stderr)
        done = cli("login", "--code", v2.last_code())
        assert done.code == 0, done
        assert cli("list").code == 0


@pytest.mark.parametrize("code_check", ["bind", "password"])
@pytest.mark.parametrize("at_a_terminal", [False, True], ids=["script", "terminal"])
def test_the_code_check_satisfies_both_kinds_of_server(tmp_path, cloud, code_check, at_a_terminal):
    # One kind wants MFAType + terminalBindEnabled (ioBroker.tapo, tapo-cli), another the
    # password with the code (piekstra's tplc). tpcloud sends both.
    with FakeCloudV2(cloud, mfa="nested") as v2:
        v2.code_check = code_check
        cli = v2_cli(tmp_path, cloud, v2)
        if at_a_terminal:
            status, transcript = run_on_terminal(["login", "-u", USERNAME, "--api", "v2"], cli.env, [
                Answer(b"Password", lambda: PASSWORD, hidden=True),
                Answer(b"Verification code", v2.last_code, ready=lambda: bool(v2.codes_sent)),
            ])
            assert status == 0, transcript
        else:
            assert login(cli).code == 10
            done = cli("login", "--code", v2.last_code())
            assert done.code == 0, done
        (check,) = v2.calls("checkMFACodeAndLogin")
        assert check.body["cloudPassword"] == PASSWORD and check.body["terminalBindEnabled"] is True
        assert cli("list").code == 0
