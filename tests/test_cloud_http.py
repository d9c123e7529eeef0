"""The cloud's HTTP (tpcloud/cloud/http.py) in-process: which proxy the environment names, which
CAs are trusted, and exchanges with a scripted server on loopback (connection reuse, compressed
and oversized replies). Proxies as a user meets them, through the CLI: tests/test_cloud_proxy.py.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import shutil
import socket
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.doubles.cloud.v1 import FakeCloud
from tests.doubles.cloud.v2 import FakeCloudV2, loopback_tls
from tests.doubles.scripted_http import ScriptedServer, http, reply
from tests.doubles.wires import pick_loopback_host
from tpcloud import errors
from tpcloud.cloud.http import CloudHttp, _hashed_ca_directory, proxy_for, trust_store

LIMIT = 4096


# -- the proxy the environment names --------------------------------------------------------------

@pytest.mark.parametrize("environ, scheme, expected", [
    ({}, "https", None),
    ({"HTTPS_PROXY": "http://proxy.example:3128"}, "https", ("proxy.example", 3128)),
    ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, "https", ("lower", 1)),
    ({"HTTPS_PROXY": "http://a:1"}, "http", None),
    ({"http_proxy": "http://b:8080"}, "http", ("b", 8080)),
    ({"ALL_PROXY": "http://c:3"}, "https", ("c", 3)),
    ({"https_proxy": "http://d:4", "all_proxy": "http://c:3"}, "https", ("d", 4)),
    ({"https_proxy": "proxy.lan:8888"}, "https", ("proxy.lan", 8888)),  # no scheme: http://
    ({"https_proxy": "http://proxy.lan"}, "https", ("proxy.lan", 80)),
], ids=lambda v: str(v))
def test_the_proxy_is_read_as_curl_reads_it(environ, scheme, expected):
    proxy = proxy_for(scheme, "wap.tplinkcloud.com", environ)
    assert (proxy and (proxy.host, proxy.port)) == expected


@pytest.mark.parametrize("no_proxy, host, bypassed", [
    ("*", "wap.tplinkcloud.com", True),
    ("tplinkcloud.com", "wap.tplinkcloud.com", True),
    (".tplinkcloud.com", "wap.tplinkcloud.com", True),
    ("*.tplinkcloud.com", "eu-wap.tplinkcloud.com", True),
    ("wap.tplinkcloud.com", "wap.tplinkcloud.com", True),
    ("WAP.TPLINKCLOUD.COM:443", "wap.tplinkcloud.com", True),
    ("cloud.com", "wap.tplinkcloud.com", False),  # a suffix, not a domain of it
    ("example.com, ,other.org", "wap.tplinkcloud.com", False),
    ("127.0.0.0/8", "127.0.0.5", True),
    ("127.1.0.0/16", "127.0.0.5", False),
    ("127.1.0.0/16", "wap.tplinkcloud.com", False),
    ("::1", "::1", True),
    ("[::1]", "[::1]", True),
])
def test_no_proxy_names_hosts_domains_and_networks(no_proxy, host, bypassed):
    environ = {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy}
    assert (proxy_for("https", host, environ) is None) == bypassed


def test_proxy_credentials_are_sent_as_basic_auth_and_never_shown():
    proxy = proxy_for("https", "wap.tplinkcloud.com", {"https_proxy": "http://me%40home:p%3Ass@proxy:3128"})
    assert proxy.authorization == "Basic " + base64.b64encode(b"me@home:p:ss").decode()
    assert proxy.shown == "http://proxy:3128"


@pytest.mark.parametrize("value", ["socks5://proxy:1080", "https://proxy:3128"])
def test_a_proxy_tpcloud_cannot_use_is_one_clear_error(value):
    with pytest.raises(errors.UsageError, match="only http:// proxies") as caught:
        proxy_for("https", "wap.tplinkcloud.com", {"ALL_PROXY": value.replace("proxy", "u:secret@proxy")})
    assert "secret" not in str(caught.value)


# -- which CAs are trusted ------------------------------------------------------------------------

def test_ssl_cert_file_is_trusted_alone(tmp_path):
    _, ca_file = loopback_tls(tmp_path)
    context = trust_store({"SSL_CERT_FILE": str(ca_file)})
    assert len(context.get_ca_certs()) == 1
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"


def test_an_unreadable_ssl_cert_file_is_a_usage_error(tmp_path):
    missing = tmp_path / "nothing.pem"
    with pytest.raises(errors.UsageError, match="SSL_CERT_FILE/SSL_CERT_DIR"):
        trust_store({"SSL_CERT_FILE": str(missing)})


@pytest.mark.parametrize("system", ["directory", "bundle", "neither"])
def test_the_systems_cas_come_first_and_certifi_only_where_it_has_none(tmp_path, monkeypatch, system):
    import ssl

    import certifi

    _, ca_file = loopback_tls(tmp_path)
    hashed = tmp_path / "certs"
    hashed.mkdir()
    (hashed / "5ad8a5d6.0").write_bytes(ca_file.read_bytes())
    paths = ssl.get_default_verify_paths()._replace(
        capath=str(hashed) if system == "directory" else None, cafile=str(ca_file) if system == "bundle" else None)
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    trusted = trust_store({}).get_ca_certs()  # a directory's CAs are read at a handshake, not before
    expected = {"directory": 0, "bundle": 1, "neither": len(ssl.create_default_context(cafile=certifi.where()).get_ca_certs())}
    assert len(trusted) == expected[system]


def test_only_a_directory_of_hashed_certificate_names_is_taken_for_the_systems(tmp_path):
    assert _hashed_ca_directory(str(tmp_path)) is None
    (tmp_path / "ca-bundle.crt").write_text("")  # Fedora's /etc/pki/tls/certs holds bundles
    assert _hashed_ca_directory(str(tmp_path)) is None
    (tmp_path / "5ad8a5d6.0").write_text("")
    assert _hashed_ca_directory(str(tmp_path)) == str(tmp_path)
    assert _hashed_ca_directory(str(tmp_path / "absent")) is None and _hashed_ca_directory(None) is None


# -- exchanges ------------------------------------------------------------------------------------

def post(url: str, *bodies: bytes, environ: dict | None = None, concurrently: bool = False) -> list:
    async def run() -> list:
        async with CloudHttp(environ=environ or {}) as client:
            calls = [client.post(url, body, [("Content-Type", "application/json")], limit=LIMIT, timeout=2) for body in bodies]
            if concurrently:
                return await asyncio.gather(*calls)
            return [await call for call in calls]

    return asyncio.run(run())


def test_calls_share_one_keep_alive_connection_and_say_what_the_cloud_needs():
    with ScriptedServer(reply(http(200, b"1")), reply(http(200, b"2"))) as server:
        replies = post(f"http://{server.host}:{server.port}/api?token=t", b"a", b"b")
    assert [r.body for r in replies] == [b"1", b"2"]
    assert server.connections == 1
    head = server.requests[0][1].decode().split("\r\n")
    assert head[0] == "POST /api?token=t HTTP/1.1"
    assert head[1:] == [f"Host: {server.host}:{server.port}", "Content-Type: application/json",
                        "Accept-Encoding: gzip", "Content-Length: 1"]


def test_calls_at_once_each_get_a_connection():
    with ScriptedServer(*[reply(http(200, b"{}"))] * 3) as server:
        assert len(post(f"http://{server.host}:{server.port}/", b"1", b"2", b"3", concurrently=True)) == 3
    assert server.connections == 3


@pytest.mark.parametrize("encode, coding", [(gzip.compress, "gzip"), (zlib.compress, "deflate")])
def test_a_compressed_reply_is_read_decoded(encode, coding):
    with ScriptedServer(reply(http(200, encode(b'{"error_code":0}'), f"Content-Encoding: {coding}"))) as server:
        [answer] = post(f"http://{server.host}:{server.port}/", b"{}")
    assert answer.body == b'{"error_code":0}'


@pytest.mark.parametrize("answer, message", [
    (http(200, gzip.compress(b" " * (LIMIT + 1)), "Content-Encoding: gzip"), "larger than 4 KiB"),  # small on the wire
    (http(200, b"x" * (LIMIT + 1)), "larger than 4 KiB"),
    (http(200, b"not gzip", "Content-Encoding: gzip"), "does not decompress"),
    (http(200, b"{}", "Content-Encoding: br"), r"content coding tpcloud does not know \(br\)"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP/1.x"),
])
def test_a_reply_past_its_bound_or_unreadable_is_a_protocol_error(answer, message):
    with ScriptedServer(reply(answer)) as server, pytest.raises(errors.ProtocolError, match=message) as caught:
        post(f"http://{server.host}:{server.port}/", b"{}")
    assert str(caught.value).startswith(f"the cloud ({server.host})")


def test_through_a_proxy_an_http_cloud_is_asked_by_its_whole_url_with_the_proxys_credentials():
    with ScriptedServer(reply(http(200, b"{}"))) as proxy:
        environ = {"http_proxy": f"http://me:pw@{proxy.host}:{proxy.port}"}
        post("http://cloud.example:8080/api?x=1", b"{}", environ=environ)
    head = proxy.requests[0][1].decode().split("\r\n")
    assert head[0] == "POST http://cloud.example:8080/api?x=1 HTTP/1.1"
    assert f"Proxy-Authorization: Basic {base64.b64encode(b'me:pw').decode()}" in head


def test_a_proxy_that_is_not_there_is_a_network_error_naming_it_without_its_password():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind((pick_loopback_host(), 0))
        address = "%s:%d" % probe.getsockname()
    environ = {"https_proxy": f"http://me:hunter2@{address}"}
    with pytest.raises(errors.NetworkError, match=f"through the proxy at http://{address}: Connection refused") as caught:
        post("https://wap.tplinkcloud.com/", b"{}", environ=environ)
    assert "hunter2" not in str(caught.value)


def test_an_ipv6_cloud_is_named_in_brackets():
    with ScriptedServer(reply(http(200, b"{}"))) as proxy:
        post("http://[::1]:8080/api", b"{}", environ={"http_proxy": f"http://{proxy.host}:{proxy.port}"})
    head = proxy.requests[0][1].decode().split("\r\n")
    assert head[0] == "POST http://[::1]:8080/api HTTP/1.1" and "Host: [::1]:8080" in head


def test_a_ca_directory_is_read_at_the_handshake_and_verifies(tmp_path):
    """A directory of CAs under their hashed names (as the system's is) verifies a server whose CA
    is there, and refuses one whose CA is not: nothing of it is read before the handshake."""
    openssl = shutil.which("openssl") or pytest.skip("needs the openssl command to name a CA by its hash")
    server_tls, ca_file = loopback_tls(tmp_path)
    digest = subprocess.run([openssl, "x509", "-subject_hash", "-noout", "-in", str(ca_file)],
                            capture_output=True, text=True, check=True).stdout.strip()
    trusted, empty = tmp_path / "trusted", tmp_path / "empty"
    trusted.mkdir(), empty.mkdir()
    (trusted / f"{digest}.0").write_bytes(ca_file.read_bytes())

    async def ask(url: str, directory: Path) -> int:
        async with CloudHttp(tls=lambda: trust_store({"SSL_CERT_DIR": str(directory)}), environ={}) as client:
            reply = await client.post(url, b"{}", [], limit=LIMIT, timeout=5)
            return reply.status

    with FakeCloud() as cloud, FakeCloudV2(cloud, tls=server_tls) as v2:
        assert asyncio.run(ask(v2.url + "/", trusted)) > 0  # an answer, whatever it says
        with pytest.raises(errors.CertificateError, match="certificate verify failed"):
            asyncio.run(ask(v2.url + "/", empty))
