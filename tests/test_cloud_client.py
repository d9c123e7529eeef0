"""The cloud client's rules, unit by unit: error mapping, where the token may go, redaction."""

from __future__ import annotations

import pytest

from tpcloud import errors
from tpcloud.cloud.client import check_token_destination, error_for
from tpcloud.redact import Redactor, redact_json, redact_url


@pytest.mark.parametrize(
    "code, cls, exit_code",
    [
        (-20601, errors.AuthError, 3), (-20600, errors.AuthError, 3), (-20602, errors.AuthError, 3),
        (-20661, errors.AuthError, 3), (-20675, errors.TokenRejected, 3), (-20651, errors.TokenRejected, 3),
        (-20652, errors.TokenRejected, 3), (-20655, errors.RefreshTokenRejected, 3),
        (-20656, errors.RefreshTokenRejected, 3), (-20571, errors.DeviceOffline, 6),
        (-20580, errors.DeviceNotBound, 4), (-20501, errors.DeviceNotBound, 4), (-20002, errors.CloudBusy, 8),
        (-20003, errors.CloudBusy, 8), (-20004, errors.RateLimited, 8), (-10200, errors.RateLimited, 8),
        (-10201, errors.RateLimited, 8), (-20677, errors.NeedsV2Login, 3), (-23003, errors.NeedsV2Login, 3),
        (-20104, errors.CloudError, 8), (-10100, errors.CloudError, 8), (-99999, errors.CloudError, 8),
    ],
)
def test_every_documented_cloud_error_has_a_class_and_exit_code(code, cls, exit_code):
    exc = error_for(code, "server text", "passthrough")
    assert type(exc) is cls and exc.exit_code == exit_code
    assert "\n" not in str(exc) and str(exc)


def test_unknown_codes_keep_the_servers_message():
    assert "Mystery" in str(error_for(-12345, "Mystery", "login"))
    assert "bug" in error_for(-20104, None, "login").hint


@pytest.mark.parametrize(
    "url",
    ["https://wap.tplinkcloud.com", "https://eu-wap.tplinkcloud.com/", "https://use1-wap.tplinkcloud.com:443"],
)
def test_the_token_may_go_to_tplink_cloud_hosts_over_https(url):
    check_token_destination(url, "https://wap.tplinkcloud.com")


@pytest.mark.parametrize(
    "url",
    [
        "http://eu-wap.tplinkcloud.com",  # not https
        "https://tplinkcloud.com.evil.example",
        "https://evil-tplinkcloud.com",
        "http://127.0.0.2:8080",  # not the configured host
    ],
)
def test_the_token_never_goes_elsewhere(url):
    with pytest.raises(errors.CloudError):
        check_token_destination(url, "http://127.0.0.1:9000")


def test_the_configured_host_is_trusted_on_any_port():
    check_token_destination("http://127.0.0.1:9999", "http://127.0.0.1:9000")


def test_redaction():
    body = {"method": "login", "params": {"cloudPassword": "pw", "terminalUUID": "u", "cloudUserName": "me"}}
    assert redact_json(body)["params"] == {"cloudPassword": "***", "terminalUUID": "***", "cloudUserName": "me"}
    assert redact_url("https://h/?token=abc-123&x=1") == "https://h/?token=***&x=1"
    redactor = Redactor()
    redactor.add("s3cret-value", None, "ab")
    assert redactor.scrub("got s3cret-value and ab") == "got *** and ab"
