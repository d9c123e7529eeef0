"""The V2 client on its own: signing from an injected clock and nonce, paging, and the trusted CAs."""

from __future__ import annotations

import asyncio
import itertools
import ssl

import pytest

from tests.doubles.cloud.v1 import FakeCloud
from tests.doubles.cloud.v2 import FakeCloudV2
from tpcloud import errors
from tpcloud.cloud import v2
from tpcloud.cloud.http import CloudHttp


def _client(fake: FakeCloudV2, http: CloudHttp, **options) -> v2.V2Client:
    return v2.V2Client(http, fake.url, timeout=5, clock=lambda: 1_700_000_000.7, retries=0, **options)


def test_requests_are_signed_with_the_injected_clock_and_nonce_and_accepted():
    counter = itertools.count()

    async def run(fake: FakeCloudV2) -> dict:
        async with CloudHttp() as http:
            client = _client(fake, http, nonce=lambda: f"nonce-{next(counter)}")
            return await client.login(fake.cloud.username, fake.cloud.password, "terminal-1")

    with FakeCloud() as cloud, FakeCloudV2(cloud) as fake:
        result = asyncio.run(run(fake))
    assert result["token"] in cloud.issued_tokens
    status, login = fake.requests
    assert status.signed and login.signed
    assert status.headers["X-Authorization"].startswith("Timestamp=1700000000, Nonce=nonce-0, AccessKey=")
    assert "Nonce=nonce-1," in login.headers["X-Authorization"]


def test_a_replayed_nonce_is_rejected_by_the_fake():
    async def run(fake: FakeCloudV2) -> None:
        async with CloudHttp() as http:
            await _client(fake, http, nonce=lambda: "always-the-same").login(fake.cloud.username, fake.cloud.password, "t")

    with FakeCloud() as cloud, FakeCloudV2(cloud) as fake, pytest.raises(errors.CloudError) as caught:
        asyncio.run(run(fake))
    assert caught.value.code == -10000 and [r.signed for r in fake.requests] == [True, False]


def test_the_device_list_is_one_signed_get_device_list_on_the_regional_server():
    # The form piekstra/tplink-cloud-api verified on the real Kasa cloud: {"method": "getDeviceList"}
    # POSTed, signed, to the account's app server root, with the token and the app's parameters.
    async def run(fake: FakeCloudV2) -> list:
        async with CloudHttp() as http:
            client = _client(fake, http)
            client.terminal = lambda: "terminal-1"
            token = (await client.login(fake.cloud.username, fake.cloud.password, "terminal-1"))["token"]
            return (await client.call("getDeviceList", token=token))["deviceList"]

    with FakeCloud() as cloud, FakeCloudV2(cloud) as fake:
        for n in range(7):
            cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", f"Plug {n}")
        cloud.add_smart_device("P110(EU)_1.0_1.2.3.json", "Tapo Plug")
        entries = asyncio.run(run(fake))
        (listing,) = [r for r in fake.requests if r.path == "/"]
    assert sorted(e["deviceId"] for e in entries) == sorted(d.device_id for d in cloud.devices)
    assert (listing.server, listing.body, listing.signed) == ("regional", {"method": "getDeviceList"}, True)
    assert listing.query["token"] and listing.query["termID"] == "terminal-1"
    assert listing.query["appName"] == "Kasa_Android_Mix" and listing.query["appVer"] == "3.4.451"
    assert listing.headers["User-Agent"].startswith("Dalvik/2.1.0 (Linux; U; Android 14")


def test_the_trusted_cas_are_the_system_ones_plus_tp_links():
    context = v2.ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    names = {dict(x[0] for x in ca["subject"]).get("commonName") for ca in context.get_ca_certs()}
    assert {"tp-link-CA", "TP-LINK CA P1", "TP-Link Cloud Root CA"} <= names
    assert len(names) > 10  # certifi's public roots are there too


def test_the_packaged_tp_link_cas_are_whole_and_chain_up():
    from importlib import resources

    from cryptography import x509

    pem = resources.files("tpcloud.cloud.certs").joinpath("tplink-cloud-ca.pem").read_bytes()
    by_name = {c.subject.rfc4514_string(): c for c in x509.load_pem_x509_certificates(pem)}
    root, ecdsa_root = by_name["CN=tp-link-CA"], next(c for n, c in by_name.items() if "TP-Link Cloud Root CA" in n)
    root.verify_directly_issued_by(root)
    ecdsa_root.verify_directly_issued_by(ecdsa_root)
    by_name["CN=TP-LINK CA P1,DC=tp-link,DC=com,DC=cn"].verify_directly_issued_by(root)


def test_an_unreadable_extra_ca_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("hello")
    with pytest.raises(errors.UsageError, match=v2.CA_FILE_VAR):
        v2.ssl_context([str(bad)])


@pytest.mark.parametrize("document, code, msg", [
    ({"error_code": 0, "result": {"errorCode": "-20601", "errorMsg": "Incorrect password"}}, -20601, "Incorrect password"),
    ({"error_code": 0, "result": {"errorCode": -20661, "msg": "locked"}}, -20661, "locked"),
    ({"error_code": 0, "result": {"errorCode": "0", "token": "t"}}, 0, None),
    ({"error_code": 0, "result": {"errorCode": "not a number"}}, 0, None),
    ({"error_code": 0, "result": {"errorCode": True}}, 0, None),
    ({"error_code": -20651, "msg": "Token expired", "result": {"errorCode": "-1"}}, -20651, "Token expired"),
])
def test_one_reader_for_both_error_shapes(document, code, msg):
    lifted = v2._unnested(document)
    assert lifted["error_code"] == code
    assert lifted.get("msg") == msg
