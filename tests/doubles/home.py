"""The emulated home, as a pytest plugin: the three layers together (cloud, wires, devices).

Every device of the populated account is also on the LAN: each one sits behind an emulator on
its own 127.x address (XOR lamp and strip, a KLAP v1 Kasa plug, KLAP v2 and AES Tapo plugs, a
KLAP v2 P300 strip) with discovery responders beside it. Kasa devices share one state object
with the fake cloud, so a switch by either route shows in both.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest

from tests.conftest import PASSWORD, USERNAME
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.wires import AesServer, DiscoveryResponder, KlapServer, XorServer, pick_loopback_host


@dataclass
class Home:
    """The emulated home: servers by device name, their responders, and the targets to probe."""

    cloud: object
    servers: dict = field(default_factory=dict)
    responders: dict = field(default_factory=dict)
    devices: dict = field(default_factory=dict)

    @property
    def targets(self) -> str:
        return ",".join(s.host for s in self.servers.values())


def _serve(stack: ExitStack, home: Home, name: str, server, device) -> None:
    home.servers[name] = stack.enter_context(server)
    home.responders[name] = stack.enter_context(DiscoveryResponder.for_server(server))
    home.devices[name] = device


def _host() -> str:
    return pick_loopback_host(udp_ports=(9999, 20002), tcp_ports=(9999,))


def serve_tapo(stack: ExitStack, home: Home, fixture: str, alias: str, mac: str, server_cls, **kw) -> None:
    """A Tapo device of the account (FIXTURE) on the LAN behind SERVER_CLS (KlapServer, AesServer)."""
    home.cloud.add_smart_device(fixture, alias, mac=mac)
    device = SmartDevice.from_fixture(fixture, nickname=alias, mac=mac, **kw)
    _serve(stack, home, alias, server_cls(device, _host(), username=USERNAME, password=PASSWORD), device)


@pytest.fixture
def home(populated_cloud):
    c = populated_cloud
    with ExitStack() as stack:
        h = Home(c)
        lamp = c.by_alias["Desk Lamp"]
        _serve(stack, h, "Desk Lamp", XorServer(lamp, _host(), 9999), lamp)
        strip = c.by_alias["Office Strip"]
        _serve(stack, h, "Office Strip", XorServer(strip, _host(), 9999), strip)
        kasa_klap = c.add_iot_device("HS100(UK)_4.1_1.1.0.json", "Hallway")
        _serve(stack, h, "Hallway", KlapServer(kasa_klap, _host(), version=1, username=USERNAME, password=PASSWORD), kasa_klap)
        serve_tapo(stack, h, "P110(EU)_1.0_1.2.3.json", "Living Room", "A842A1000001", KlapServer)
        serve_tapo(stack, h, "P100(US)_1.0.0_1.4.0.json", "Bedroom", "A842A1000002", AesServer)
        serve_tapo(stack, h, "P300(EU)_1.0_1.0.15.json", "Power Strip", "A842A1000003", KlapServer,
                   child_nicknames=["Fan", "Radio", "Heater"])
        yield h


@pytest.fixture
def user(account, home):
    """A logged-in user whose discovery probes reach the emulated home (and nothing else)."""
    account.env["TPCLOUD_DISCOVERY_TARGET"] = home.targets
    return account
