"""A device whose firmware changed how it talks, between two commands: tpcloud as a user runs it.

Real homes meet this every week: a Tapo plug cached as AES is updated to KLAP and answers the AES
handshake with error 1003 (python-kasa `exceptions.py`, SmartErrorCode 1003: "seen after an
encryption-changing fw upgrade"; tp-link-tapo-connect#41); a KLAP device moved back answers
the KLAP handshake with 404; a Kasa plug moved off XOR closes TCP 9999. The command that meets
it must drop the stale entry, ask the device at its address how it talks now (one unicast
probe: the discovery target here answers nothing, so only that probe can find it), and succeed
on the new wire, with no `discover` by hand; the next command goes straight to the new wire.
"""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack

import pytest

from tests.conftest import PASSWORD, USERNAME
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.wires import AesServer, DiscoveryResponder, KlapServer, pick_loopback_host

# Nothing answers discovery here (tests/conftest.py): the device can only be found at its address.
NOWHERE = {"TPCLOUD_DISCOVERY_TARGET": "127.0.0.1"}

UPDATES = {
    "Bedroom": lambda device, host: KlapServer(device, host, username=USERNAME, password=PASSWORD),
    "Living Room": lambda device, host: AesServer(device, host, username=USERNAME, password=PASSWORD),
    "Desk Lamp": lambda device, host: KlapServer(device, host, version=1, username=USERNAME, password=PASSWORD),
}
WIRES = {"Bedroom": ("aes", "klap"), "Living Room": ("klap", "aes"), "Desk Lamp": ("xor", "klap")}


def update_firmware(home, name: str, stack: ExitStack):
    """The device at its address now speaks another wire (and says so to discovery)."""
    old, device = home.servers[name], home.devices[name]
    home.responders[name].stop()
    old.stop()
    server = stack.enter_context(UPDATES[name](device, old.host))
    stack.enter_context(DiscoveryResponder.for_server(server))
    return server


def lan_entry(user, name: str) -> dict:
    rows = {r["name"]: r for r in json.loads(user("list", "--json").stdout)}
    return rows[name]


@pytest.mark.parametrize("name", list(UPDATES))
def test_a_device_whose_firmware_changed_its_wire_is_switched_in_the_same_command(user, home, name):
    before, after = WIRES[name]
    assert user("discover", "--timeout", "1").code == 0
    assert lan_entry(user, name)["lan_wire"] == before
    device = home.devices[name]
    with ExitStack() as stack:
        server = update_firmware(home, name, stack)

        result = user("-v", "switch", name, "on", env=NOWHERE)
        assert result.code == 0, result
        assert result.stdout.strip() == f"{name}: on (via local {after} {server.host}:{server.port})"
        assert f"refused {before}: asking it how it talks now" in result.stderr
        assert device.is_on() is True

        # The next command takes the new wire at once: no refusal, no probe.
        again = user("-v", "switch", name, "off", env=NOWHERE)
        assert again.code == 0, again
        assert "refused" not in again.stderr and "discovery:" not in again.stderr
        assert device.is_on() is False
        assert lan_entry(user, name)["lan_wire"] == after


def test_a_refused_wire_with_the_device_gone_says_what_was_tried(user, home):
    assert user("discover", "--timeout", "1").code == 0
    home.responders["Bedroom"].stop()
    home.servers["Bedroom"].stop()
    result = user("switch", "Bedroom", "on", "--via", "local", env=NOWHERE)
    assert result.code == 6, result
    line = result.stderr.strip()
    assert line.startswith("tpcloud: Bedroom: no route worked (LAN ") and "discovery: no answer" in line
    assert line.endswith("(check that the device is powered and on the same network)")


def test_a_device_that_opens_its_server_only_once_probed_is_switched(user, home):
    # A P110 on firmware 1.4.6 refuses TCP until a 20002 probe reaches it, or for ~8 minutes
    # after a power cut (home-assistant-tapo-p100#958): the refused connection leads to the probe,
    # which opens it, and the request is retried at the same address.
    mac = "A842A1000010"
    home.cloud.add_smart_device("P110(EU)_1.0_1.2.3.json", "Heater", mac=mac)
    device = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json", nickname="Heater", mac=mac)
    host = pick_loopback_host(udp_ports=(9999, 20002))
    with socket.socket() as free:  # the device keeps its port across the power cut
        free.bind((host, 0))
        port = free.getsockname()[1]
    server = KlapServer(device, host, port, username=USERNAME, password=PASSWORD)
    with server, DiscoveryResponder.for_server(server) as responder:
        assert user("discover", "--timeout", "1", "--target", host).code == 0
        server.stop()  # the power cut: nothing listens until a probe arrives
        responder.on_probe = server.start

        result = user("-v", "switch", "Heater", "on", env=NOWHERE)
        assert result.code == 0, result
        assert f"{host}:{port} refused klap: asking it how it talks now" in result.stderr
        assert result.stdout.strip() == f"Heater: on (via local klap {host}:{port})"
        assert device.is_on() is True
