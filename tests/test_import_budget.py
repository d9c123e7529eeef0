"""The import budget: what an everyday command may load, route by route.

Start-up is most of what a warm `tpcloud switch` costs, and one careless import at the top of a
module can put back 50-130 ms on every command. So each route has a list of packages it must not
load, and TLS is counted: a LAN device speaks plain HTTP (or XOR over TCP), so no TLS context is
made and no CA bundle is read; the cloud is reached over verified TLS and may load both.

The user here logged in with no OS keyring, as in cron or Termux: the file store was chosen and
remembered at login, so no ordinary command imports keyring. (asyncio imports the ssl module
itself; only TLS contexts are counted.)
"""

from __future__ import annotations

import pytest

from tests.conftest import Cli

# Never needed to switch a device: the OS keyring (the file store serves this user), tables.
EVERYDAY = ("keyring", "tabulate")
# The cloud's HTTP client and its CA bundle: only the cloud route needs them.
CLOUD_HTTP = ("httpx", "httpcore", "certifi")

ROUTES = {
    "XOR": (("switch", "Desk Lamp", "on"), (*EVERYDAY, *CLOUD_HTTP, "cryptography")),
    "KLAP": (("switch", "Living Room", "on"), (*EVERYDAY, *CLOUD_HTTP)),
    "AES": (("switch", "Bedroom", "on"), (*EVERYDAY, *CLOUD_HTTP)),
    "KLAP strip": (("switch", "Power Strip/Fan", "off"), (*EVERYDAY, *CLOUD_HTTP)),
    "cloud": (("switch", "Desk Lamp", "on", "--via", "cloud"), EVERYDAY),
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
    if route != "cloud":
        assert (record.tls_contexts, record.ca_loads) == (0, []), route
    # The test cloud speaks plain HTTP, so no CA bundle is read; an https cloud is verified
    # (test_cli_v2's TLS tests).
    assert record.ca_loads == [], route


def test_help_and_version_load_no_network_crypto_or_secret_library(warm: Cli):
    for args in (("--help",), ("switch", "--help"), ("--version",)):
        result, record = warm.recorded(*args)
        assert result.code == 0, result
        assert [p for p in (*EVERYDAY, *CLOUD_HTTP, "cryptography", "asyncio") if record.has(p)] == [], args
        assert record.tls_contexts == 0, args
