"""TPAP: current Tapo firmware advertises `encrypt_type "TPAP"` on UDP 20002, and tpcloud reaches
it over KLAP v2, which such firmware answers while the Tapo app's "Third-Party Compatibility" is on.

Peer evidence: home-assistant-tapo-p100#970 (an L530 on 1.4.2 advertising TPAP, http_port 80,
works mapped to KLAP v2), python-kasa #1592 (a KP125M advertising TPAP reads fine over KLAP),
go-tapo-exporter#5 (a P304M on 1.4.0 refuses KLAP with HTTP 403 until the setting is switched on).
The emulator: a KLAP v2 device whose discovery reply says TPAP, and which answers handshake1
with 403 while its `third_party_compatibility` is off.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORD, USERNAME, one_line
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.wires import DiscoveryResponder, KlapServer, pick_loopback_host

MAC = "A842A1000009"


@pytest.fixture
def lamp(home):
    """An L530 on TPAP firmware in the account and on the LAN, found by `discover`."""
    home.cloud.add_smart_device("L530E(EU)_3.0_1.1.6.json", "Reading Lamp", mac=MAC)
    device = SmartDevice.from_fixture("L530E(EU)_3.0_1.1.6.json", nickname="Reading Lamp", mac=MAC)
    host = pick_loopback_host(udp_ports=(9999, 20002))
    with KlapServer(device, host, username=USERNAME, password=PASSWORD) as server, \
            DiscoveryResponder.for_server(server, encrypt_type="TPAP", lv=2):
        yield device, server


def test_a_tpap_device_is_discovered_listed_and_switched_over_klap(user, lamp):
    device, server = lamp
    found = json.loads(user("discover", "--timeout", "1", "--target", server.host, "--json").stdout)
    assert [(f["name"], f["wire"], f["encrypt_type"]) for f in found] == [("Reading Lamp", "tpap", "TPAP")]
    assert "tpap" in user("discover", "--timeout", "1", "--target", server.host).stdout

    row = {r["name"]: r for r in json.loads(user("list", "--json").stdout)}["Reading Lamp"]
    assert row["lan_wire"] == "tpap" and row["lan_address"] == f"{server.host}:{server.port}"

    result = user("switch", "Reading Lamp", "on", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["wire"] == "tpap"
    assert device.is_on() is True
    assert server.handshake1_count == 1

    doctor = user("doctor")
    assert f"answers at {server.host}:{server.port} (tpap)" in doctor.stdout


def test_a_tpap_device_refusing_klap_names_the_setting_to_switch_on(user, lamp):
    _device, server = lamp
    assert user("discover", "--timeout", "1", "--target", server.host).code == 0
    server.third_party_compatibility = False

    result = user("switch", "Reading Lamp", "on")
    assert result.code == 3, result
    line = one_line(result.stderr)
    assert "speaks TPAP, and refused KLAP" in line and "HTTP 403" in line
    assert line.endswith('(switch on "Third-Party Compatibility" in the Tapo app (Me → Third-Party Services); '
                         "after a firmware update, switch it off and on again)")

    server.third_party_compatibility = True  # switched on: the same command works, no other step
    assert user("switch", "Reading Lamp", "on").code == 0
