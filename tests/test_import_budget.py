"""The import budget: what an everyday command may load, route by route.

Start-up is most of what a warm `tpcloud switch` costs, and one careless import at the top of a
module can put back 50-130 ms on every command. So each route has a list of packages it must not
load, and TLS is counted: a LAN device speaks plain HTTP (or XOR over TCP), so no TLS context is
made and no CA bundle is read; the cloud is reached over verified TLS, made on its first https
request, and reads no whole CA bundle where the system keeps a hashed CA directory.

The user here logged in with no OS keyring, as in cron or Termux: the file store was chosen and
remembered at login, so no ordinary command imports keyring. (asyncio imports the ssl module
itself; only TLS contexts are counted.)
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, USERNAME, Cli, v2_cli
from tests.doubles.cloud.v1 import FakeCloud
from tests.doubles.cloud.v2 import FakeCloudV2, loopback_tls

# Never needed to switch a device: the OS keyring (the file store serves this user), tables.
EVERYDAY = ("keyring", "tabulate")
# HTTP is tpcloud's own on every route (httpx and what it brings cost ~40 ms to import), and a
# CA bundle is for https alone: the test cloud speaks plain HTTP.
HTTP_LIBRARIES = ("httpx", "httpcore", "anyio", "h11", "certifi")

ROUTES = {
    "XOR": (("switch", "Desk Lamp", "on"), (*EVERYDAY, *HTTP_LIBRARIES, "cryptography")),
    "KLAP": (("switch", "Living Room", "on"), (*EVERYDAY, *HTTP_LIBRARIES)),
    "AES": (("switch", "Bedroom", "on"), (*EVERYDAY, *HTTP_LIBRARIES)),
    "KLAP strip": (("switch", "Power Strip/Fan", "off"), (*EVERYDAY, *HTTP_LIBRARIES)),
    "cloud": (("switch", "Desk Lamp", "on", "--via", "cloud"), (*EVERYDAY, *HTTP_LIBRARIES, "cryptography")),
}


@pytest.fixture
def warm(user: Cli, home) -> Cli:
    """A user logged in where no OS keyring answers (no D-Bus session, nothing forced), whose
    cache knows every device and its LAN address, with saved sessions."""
    del user.env["PYTHON_KEYRING_BACKEND"]
    user.login()
    assert "file store" in user("doctor").stdout
    assert user("discover", "--timeout", "1").code == 0
    for args, _ in ROUTES.values():
        assert user(*args).code == 0  # the first KLAP/AES switch handshakes and saves the session
    return user


@pytest.mark.parametrize("route", ROUTES)
def test_a_switch_loads_only_what_its_route_needs(warm: Cli, route: str):
    args, forbidden = ROUTES[route]
    result, record = warm.recorded(*args)
    assert result.code == 0, result
    assert [p for p in forbidden if record.has(p)] == [], route
    # The test cloud speaks plain HTTP: no TLS context either (an https cloud: below).
    assert (record.tls_contexts, record.ca_loads) == (0, []), route


def test_help_and_version_load_no_network_crypto_or_secret_library(warm: Cli):
    for args in (("--help",), ("switch", "--help"), ("--version",)):
        result, record = warm.recorded(*args)
        assert result.code == 0, result
        assert [p for p in (*EVERYDAY, *HTTP_LIBRARIES, "cryptography", "asyncio") if record.has(p)] == [], args
        assert record.tls_contexts == 0, args


def test_an_https_cloud_makes_one_tls_context_and_reads_a_bundle_only_where_the_system_has_no_ca_directory(tmp_path):
    """The V2 cloud over TLS, trusted through TPCLOUD_CLOUD_V2_CA_FILE: one context for the
    command, its CAs from the system's hashed directory (looked up per handshake) or bundle,
    certifi's only where the system has neither, and SSL_CERT_FILE instead of all of them."""
    import ssl

    from tpcloud.cloud.http import _hashed_ca_directory

    server_tls, ca_file = loopback_tls(tmp_path)
    with FakeCloud(mfa_required=True) as cloud, FakeCloudV2(cloud, tls=server_tls) as v2:
        cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
        user = v2_cli(tmp_path, cloud, v2)
        del user.env["PYTHON_KEYRING_BACKEND"]  # no OS keyring answers: the file store is chosen
        user.env["TPCLOUD_CLOUD_V2_CA_FILE"] = str(ca_file)
        assert user("login", "-u", USERNAME, "--password-stdin", "--api", "v2", input=PASSWORD + "\n").code == 0
        result, record = user.recorded("switch", "Desk Lamp", "on", "--via", "cloud")
        assert result.code == 0, result
        assert record.tls_contexts == 1
        assert [p for p in (*EVERYDAY, "httpx", "httpcore", "anyio") if record.has(p)] == []
        system = ssl.get_default_verify_paths()
        assert record.has("certifi") == (_hashed_ca_directory(system.capath) is None and system.cafile is None)

        result, record = user.recorded("switch", "Desk Lamp", "off", "--via", "cloud", env={"SSL_CERT_FILE": str(ca_file)})
        assert result.code == 0, result
        assert record.tls_contexts == 1 and not record.has("certifi")
