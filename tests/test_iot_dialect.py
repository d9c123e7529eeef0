"""The IOT dialect against real device replies from the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpcloud.devices import Device, Outlet
from tpcloud.dialects import iot
from tpcloud.errors import DeviceError, ProtocolError

FIXTURES = Path(__file__).parent / "fixtures" / "iot"


def sysinfo(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())["system"]["get_sysinfo"]


def test_requests():
    assert iot.power_request(True, bulb=False) == {"system": {"set_relay_state": {"state": 1}}}
    bulb = iot.power_request(False, bulb=True)[iot.BULB_SERVICE]["transition_light_state"]
    assert bulb["on_off"] == 0
    outlet = Outlet("X" * 42, "Printer")
    assert iot.for_outlet(iot.sysinfo_request(), outlet)["context"] == {"child_ids": ["X" * 42]}
    own = {"context": {"child_ids": ["Y"]}, "system": {}}
    assert iot.for_outlet(own, outlet) is own


def test_check_finds_the_first_failing_method():
    ok = {"system": {"set_relay_state": {"err_code": 0}}}
    assert iot.check(ok) is ok
    with pytest.raises(DeviceError) as caught:
        iot.check({"system": {"set_relay_state": {"err_code": -3, "err_msg": "invalid argument"}}})
    assert caught.value.code == -3 and "invalid argument" in str(caught.value)
    with pytest.raises(DeviceError, match="module"):
        iot.check({"foo": {"err_code": -1}})
    with pytest.raises(ProtocolError):
        iot.check(["not", "an", "object"])


def test_strip_outlets_get_full_ids():
    info = sysinfo("KP303(US)_2.0_1.0.9.json")
    outlets = iot.outlets_of({"children": [{"id": "01", "alias": "B"}]}, "DEV")
    assert outlets == [Outlet("DEV01", "B")]
    assert len(iot.outlets_of(info, "DEV")) == len(info["children"])


def test_power_state_of_plugs_bulbs_and_outlets():
    plug = sysinfo("HS103(US)_2.1_1.1.4.json")
    assert iot.is_on(plug) == bool(plug["relay_state"])
    bulb = sysinfo("KL130(US)_1.0_1.8.11.json")
    assert iot.is_on(bulb) is False
    strip = sysinfo("HS300(US)_2.0_1.0.12.json")
    first = strip["children"][0]
    assert iot.is_on(strip, Outlet(first["id"], first["alias"])) == bool(first["state"])
    with pytest.raises(ProtocolError):
        iot.is_on(strip, Outlet("gone", "Gone"))


def test_summary_of_a_strip():
    strip = sysinfo("HS300(US)_2.0_1.0.12.json")
    device = Device("D", "Strip", "HS300(US)", "IOT.SMARTPLUGSWITCH", True, "")
    facts = iot.summary(device, strip)
    assert facts["model"] == "HS300(US)" and len(facts["outlets"]) == 6
