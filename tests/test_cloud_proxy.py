"""The cloud through a forward proxy from the environment, as a user behind one sees it.

`tpcloud` runs as a process against the fake clouds on loopback, with the proxy variables a user
sets (``HTTP_PROXY``/``http_proxy``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) pointing at a
real forward proxy on loopback (tests/doubles/proxy.py), which records what it saw. What is
expected is what curl, requests and httpx (used on its own) do:

- an ``http://`` cloud goes through ``HTTP_PROXY`` (or ``ALL_PROXY``) in absolute form; an
  ``https://`` cloud through ``HTTPS_PROXY`` (or ``ALL_PROXY``) in a CONNECT tunnel, inside which
  the cloud's certificate is verified as without a proxy;
- a loopback cloud is not exempt by itself: only ``NO_PROXY`` (a host, or ``*``) exempts a host;
- credentials in the proxy's URL (percent-encoded) are sent as ``Proxy-Authorization: Basic``
  and never shown, not even by ``-v``;
- a proxy that refuses or is not there is a network error (exit 7) in one line;
- devices on the LAN are never reached through a proxy.
"""

from __future__ import annotations

import base64
import json
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from tests.conftest import PASSWORD, USERNAME, Cli, Result, cli_of, one_line, v2_cli
from tests.doubles.cloud.v1 import FakeCloud
from tests.doubles.cloud.v2 import FakeCloudV2, loopback_tls
from tests.doubles.proxy import ForwardProxy, basic, nothing_listening

PROXY_USER = "proxy-user"
# Needs percent-encoding in a URL (":", "@", "/"): the proxy must receive it decoded.
PROXY_PASSWORD = "Pr0xy:p@ss/w0rd"
NETWORK_ERROR = 7

def _secret_forms(user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> list[str]:
    """Every way the proxy password could leak: itself, percent-encoded, and in the Basic token."""
    return [password, quote(password, safe=""), base64.b64encode(f"{user}:{password}".encode()).decode()]


# -- the V1 cloud over plain HTTP ------------------------------------------------------------


@pytest.fixture
def cloud():
    """A V1 account (no 2-step verification) with one plug on the regional server."""
    with FakeCloud() as c:
        c.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
        yield c


@pytest.fixture
def v1(tmp_path, cloud) -> Cli:
    return cli_of(tmp_path, cloud.url)


@pytest.fixture
def proxy():
    with ForwardProxy() as p:
        yield p


def _everyday(cli: Cli, env: dict, cloud: FakeCloud, *root: str) -> list[Result]:
    """login, list, and a cloud switch of the lamp, each of which must succeed."""
    lamp = cloud.by_alias["Desk Lamp"]
    lamp.set_state(False)
    results = [
        cli(*root, "login", "--username", USERNAME, "--password-stdin", input=PASSWORD + "\n", env=env),
        cli(*root, "list", "--json", env=env),
        cli(*root, "switch", "Desk Lamp", "on", "--via", "cloud", env=env),
    ]
    for result in results:
        assert result.code == 0, result
    assert [row["name"] for row in json.loads(results[1].stdout)] == ["Desk Lamp"]
    assert lamp.is_on()
    return results


def _through_the_proxy_in_absolute_form(proxy: ForwardProxy, cloud: FakeCloud) -> None:
    """Every request the cloud got came through PROXY, as an absolute http:// URL."""
    assert proxy.seen, "the proxy saw nothing"
    servers = (cloud.url + "/", cloud.regional_url + "/")
    assert all(method == "POST" and target.startswith(servers) for method, target in proxy.seen), proxy.seen
    assert {target.split("/")[2] for _, target in proxy.seen} == {s.split("/")[2] for s in servers}
    assert len(proxy.seen) == len(cloud.requests)  # nothing went around it
    assert all(r.status == 200 for r in proxy.requests)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_an_http_cloud_is_reached_through_the_proxy(v1, cloud, proxy, variable):
    _everyday(v1, {variable: proxy.url}, cloud)
    _through_the_proxy_in_absolute_form(proxy, cloud)


def test_https_proxy_is_not_used_for_an_http_cloud(v1, cloud, proxy):
    _everyday(v1, {"HTTPS_PROXY": proxy.url}, cloud)
    assert proxy.seen == [] and cloud.requests


@pytest.mark.parametrize(
    "no_proxy", [{"NO_PROXY": "127.0.0.1"}, {"no_proxy": "127.0.0.1"}, {"NO_PROXY": "localhost,127.0.0.1"}, {"NO_PROXY": "*"}],
    ids=["NO_PROXY", "no_proxy", "a-list", "star"],
)
def test_no_proxy_naming_the_cloud_host_bypasses_the_proxy(v1, cloud, proxy, no_proxy):
    _everyday(v1, {"HTTP_PROXY": proxy.url, "ALL_PROXY": proxy.url, **no_proxy}, cloud)
    assert proxy.seen == [] and cloud.requests


# -- credentials for the proxy ---------------------------------------------------------------


@pytest.fixture
def guarded_proxy():
    """A proxy that wants PROXY_USER and PROXY_PASSWORD."""
    with ForwardProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as p:
        yield p


def test_credentials_in_the_proxy_url_reach_the_proxy_decoded(v1, cloud, guarded_proxy):
    _everyday(v1, {"HTTP_PROXY": guarded_proxy.url_with(PROXY_USER, PROXY_PASSWORD)}, cloud)
    _through_the_proxy_in_absolute_form(guarded_proxy, cloud)
    assert guarded_proxy.authorizations == [basic(PROXY_USER, PROXY_PASSWORD)] * len(guarded_proxy.seen)


@pytest.mark.parametrize("flag", ["-v", "--debug"])
def test_the_proxy_password_is_never_shown_even_verbose(v1, cloud, guarded_proxy, flag):
    results = _everyday(v1, {"HTTP_PROXY": guarded_proxy.url_with(PROXY_USER, PROXY_PASSWORD)}, cloud, flag)
    assert "> POST" in results[-1].stderr  # the verbose log was on
    for result in results:
        for secret in _secret_forms():
            assert secret not in result.output, (secret, result)


# -- a proxy that refuses, or is not there ---------------------------------------------------


def _fails_as_a_network_error(result: Result, *secrets: str) -> str:
    assert result.code == NETWORK_ERROR, result
    line = one_line(result.stderr)
    assert "Traceback" not in result.output
    for secret in secrets:
        assert secret not in result.output, (secret, result)
    return line


@pytest.mark.parametrize("given", [None, "wrong-Pr0xy-password"], ids=["no-credentials", "wrong-password"])
def test_a_proxy_that_refuses_fails_the_command_in_one_line(v1, cloud, guarded_proxy, given):
    url = guarded_proxy.url if given is None else guarded_proxy.url_with(PROXY_USER, given)
    result = v1("login", "--username", USERNAME, "--password-stdin", input=PASSWORD + "\n", env={"HTTP_PROXY": url})
    line = _fails_as_a_network_error(result, *_secret_forms(), *(_secret_forms(PROXY_USER, given) if given else ()))
    assert "407" in line or "proxy" in line.lower(), line
    assert guarded_proxy.requests and all(r.status == 407 for r in guarded_proxy.requests)
    assert cloud.requests == []


def test_a_proxy_where_nothing_listens_fails_the_command_in_one_line(v1, cloud):
    with nothing_listening() as port:
        url = f"http://{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}@127.0.0.1:{port}"
        result = v1("login", "--username", USERNAME, "--password-stdin", input=PASSWORD + "\n", env={"HTTP_PROXY": url})
    _fails_as_a_network_error(result, *_secret_forms())
    assert cloud.requests == []


# -- the V2 cloud over TLS, through a CONNECT tunnel -----------------------------------------


@contextmanager
def _tls_cloud(tmp_path, cloud: FakeCloud):
    """The V2 cloud over TLS in front of CLOUD, and a user who trusts its test CA."""
    server_tls, ca_file = loopback_tls(tmp_path)
    with FakeCloudV2(cloud, tls=server_tls) as v2:
        cli = v2_cli(tmp_path, cloud, v2)
        cli.env["TPCLOUD_CLOUD_V2_CA_FILE"] = str(ca_file)
        yield cli, v2


def _authority(url: str) -> str:
    return url.split("/")[2]


def _tunnels_only(proxy: ForwardProxy, expected: set) -> bool:
    """PROXY was asked for each tunnel of EXPECTED and nothing else, and opened every one."""
    assert set(proxy.seen) == expected, proxy.seen
    assert all(r.status == 200 for r in proxy.requests), proxy.requests
    return True


def _login_v2(cli: Cli, env: dict) -> Result:
    return cli("login", "--api", "v2", "--username", USERNAME, "--password-stdin", input=PASSWORD + "\n", env=env)


def test_an_https_cloud_is_reached_through_a_connect_tunnel_and_still_verified(tmp_path, cloud, guarded_proxy):
    with _tls_cloud(tmp_path, cloud) as (cli, v2):
        assert v2.url.startswith("https://127.0.0.1:")
        env = {"HTTPS_PROXY": guarded_proxy.url_with(PROXY_USER, PROXY_PASSWORD)}
        results = [_login_v2(cli, env), cli("list", env=env), cli("switch", "Desk Lamp", "on", "--via", "cloud", env=env)]
        for result in results:
            assert result.code == 0, result
            for secret in _secret_forms():
                assert secret not in result.output
        assert cloud.by_alias["Desk Lamp"].is_on()
        assert v2.requests and all(r.signed for r in v2.requests)
        tunnels = {("CONNECT", _authority(v2.url)), ("CONNECT", _authority(v2.regional_url))}
        assert _tunnels_only(guarded_proxy, tunnels)
        assert guarded_proxy.authorizations == [basic(PROXY_USER, PROXY_PASSWORD)] * len(guarded_proxy.seen)


def test_through_the_tunnel_a_certificate_from_another_ca_is_refused(tmp_path, cloud, proxy):
    (tmp_path / "other").mkdir()
    _, other_ca = loopback_tls(tmp_path / "other")
    with _tls_cloud(tmp_path, cloud) as (cli, v2):
        cli.env["TPCLOUD_CLOUD_V2_CA_FILE"] = str(other_ca)
        result = _login_v2(cli, {"HTTPS_PROXY": proxy.url})
        assert result.code == NETWORK_ERROR and "certificate verify failed" in one_line(result.stderr), result
        assert "Traceback" not in result.stderr
        assert v2.requests == []
        # The tunnel was open: the refusal is tpcloud's own check of the certificate, not the proxy's.
        assert _tunnels_only(proxy, {("CONNECT", _authority(v2.url))})


def test_a_proxy_that_refuses_the_tunnel_fails_the_command_in_one_line(tmp_path, cloud, guarded_proxy):
    with _tls_cloud(tmp_path, cloud) as (cli, v2):
        result = _login_v2(cli, {"HTTPS_PROXY": guarded_proxy.url_with(PROXY_USER, "wrong-Pr0xy-password")})
        line = _fails_as_a_network_error(result, *_secret_forms(), *_secret_forms(PROXY_USER, "wrong-Pr0xy-password"))
        assert "407" in line or "proxy" in line.lower(), line
        assert guarded_proxy.seen and set(guarded_proxy.seen) == {("CONNECT", _authority(v2.url))}
        assert all(r.status == 407 for r in guarded_proxy.requests)
        assert v2.requests == []


# -- the LAN ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Living Room", "Bedroom"], ids=["KLAP", "AES"])
def test_devices_on_the_lan_are_never_reached_through_a_proxy(user, home, proxy, name):
    assert user("discover", "--timeout", "1").code == 0  # each device's address, without a proxy
    home.cloud.clear_requests()
    every = {var: proxy.url for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY")}
    for action, expected in (("on", True), ("off", False)):
        result = user("switch", name, action, "--via", "local", "--json", env=every)
        assert result.code == 0, result
        assert json.loads(result.stdout)["route"] == "local" and home.devices[name].is_on() is expected
    assert home.servers[name].http_count > 0
    assert proxy.seen == [] and home.cloud.count() == 0
