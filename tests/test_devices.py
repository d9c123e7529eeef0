"""Names to devices: aliases, ids, outlets, ambiguity and suggestions."""

from __future__ import annotations

import base64

import pytest

from tpcloud.devices import Device, Outlet, decode_alias, resolve
from tpcloud.errors import NameNotFound


def device(alias: str, device_id: str, *outlets: Outlet, device_type: str = "IOT.SMARTPLUGSWITCH") -> Device:
    return Device(device_id, alias, "HS300(US)", device_type, True, "https://eu-wap.tplinkcloud.com", outlets=outlets)


STRIP = device("Office Strip", "AA" * 20, Outlet("AA" * 20 + "00", "Monitor"), Outlet("AA" * 20 + "01", "Printer"))
LAMP = device("Desk Lamp", "BB" * 20)
OTHER_STRIP = device("Kitchen Strip", "CC" * 20, Outlet("CC" * 20 + "00", "Printer"))


def test_tapo_aliases_are_base64_and_kasa_aliases_are_not():
    encoded = base64.b64encode("Wohnzimmer Lampe ☀".encode()).decode()
    assert decode_alias(encoded, "SMART.TAPOPLUG") == "Wohnzimmer Lampe ☀"
    assert decode_alias("Desk Lamp", "SMART.TAPOPLUG") == "Desk Lamp"  # not base64: kept
    assert decode_alias(encoded, "IOT.SMARTPLUGSWITCH") == encoded


@pytest.mark.parametrize("name", ["Desk Lamp", "desk lamp", "  DESK LAMP ", "bb" * 20])
def test_alias_in_any_case_or_device_id(name):
    assert resolve([STRIP, LAMP], name).device is LAMP


def test_outlet_by_its_alias_by_strip_slash_outlet_and_by_child_id():
    for name in ("Monitor", "office strip/monitor", "AA" * 20 + "00"):
        target = resolve([STRIP, LAMP], name)
        assert target.device is STRIP and target.outlet.alias == "Monitor"
    assert resolve([STRIP, LAMP], "Office Strip").outlet is None


def test_ambiguous_names_list_every_candidate():
    with pytest.raises(NameNotFound) as caught:
        resolve([STRIP, OTHER_STRIP], "printer")
    message = str(caught.value)
    assert "Office Strip/Printer" in message and "Kitchen Strip/Printer" in message
    assert resolve([STRIP, OTHER_STRIP], "Kitchen Strip/Printer").device is OTHER_STRIP


def test_unknown_names_suggest_close_matches():
    with pytest.raises(NameNotFound) as caught:
        resolve([STRIP, LAMP], "Dsk Lamp")
    assert '"Desk Lamp"' in caught.value.hint
    with pytest.raises(NameNotFound) as caught:
        resolve([STRIP, LAMP], "zzz")
    assert "tpcloud list" in caught.value.hint


def test_devices_survive_the_cache_round_trip():
    assert Device.from_dict(STRIP.to_dict()) == STRIP


def test_device_from_a_cloud_entry():
    entry = {
        "deviceType": "SMART.TAPOPLUG", "alias": base64.b64encode(b"Tapo").decode(), "deviceModel": "P110(EU)",
        "deviceId": "80" * 20, "status": 0, "appServerUrl": "https://eu-wap.tplinkcloud.com", "deviceMac": "A842A1000000",
    }
    d = Device.from_cloud(entry)
    assert (d.alias, d.dialect, d.online, d.mac) == ("Tapo", "smart", False, "A842A1000000")
