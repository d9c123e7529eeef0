"""Kasa light strips (KL400, KL420, KL430): bulbs to the cloud, lit through their own module.

A strip has no ``smartlife.iot.smartbulb.lightingservice``; power, brightness and colour go to
``smartlife.iot.lightStrip`` ``set_light_state`` (python-kasa's ``IotLightStrip``: LIGHT_SERVICE
and SET_LIGHT_METHOD). The emulator is seeded from the recorded KL430(US) 2.0 fixture; the CLI runs
as a process against it over XOR on a 127.x address and through the fake cloud's passthrough.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack

import pytest

from tests.conftest import one_line
from tests.doubles.devices.iot import ERR_MODULE, IotDevice, load_fixture
from tests.doubles.home import _serve
from tests.doubles.wires import XorServer, pick_loopback_host
from tpcloud import errors
from tpcloud.capabilities import light
from tpcloud.devices import Device, Target
from tpcloud.dialects import iot

FIXTURE = "KL430(US)_2.0_1.0.11.json"
STRIP = "smartlife.iot.lightStrip"
BULB = "smartlife.iot.smartbulb.lightingservice"
SYSINFO = {"system": {"get_sysinfo": {}}}


def cloud_entry(model: str, device_type: str = "IOT.SMARTBULB") -> Device:
    return Device.from_cloud({"deviceId": "80", "alias": "x", "deviceType": device_type, "deviceModel": model})


def run(exchange, fake: IotDevice, answer=None):
    """A capability's exchange with FAKE, as the cloud's device list describes it; ANSWER may
    stand in for the device's own reply."""

    async def send(request):
        return (answer or fake.handle)(request)

    device = Device(fake.device_id, fake.alias, fake.model, fake.device_type, True, "")
    return asyncio.run(exchange(Target(device), send))


# -- which devices are light strips -------------------------------------------------------------


@pytest.mark.parametrize("model, device_type, strip", [
    ("KL430(US)", "IOT.SMARTBULB", True),
    ("KL420L5(US)", "IOT.SMARTBULB", True),
    ("KL400L10(US)", "IOT.SMARTBULB", True),
    ("kl430(un)", "iot.smartbulb", True),
    ("KL130(US)", "IOT.SMARTBULB", False),
    ("KL430(US)", "IOT.SMARTPLUGSWITCH", False),  # only a bulb is a light strip
    ("KP303(US)", "IOT.SMARTPLUGSWITCH", False),
    ("L920-5(EU)", "SMART.TAPOBULB", False),  # Tapo strips speak SMART: set_device_info like bulbs
])
def test_the_cloud_list_tells_a_light_strip_by_its_model(model, device_type, strip):
    device = cloud_entry(model, device_type)
    assert device.is_light_strip is strip
    assert device.is_bulb is ("BULB" in device_type.upper())


def test_a_sysinfo_tells_a_light_strip_by_its_length_or_its_model():
    sysinfo = load_fixture(FIXTURE)["system"]["get_sysinfo"]
    assert iot.is_light_strip(sysinfo)
    assert iot.is_light_strip({"model": "KL499(US)", "length": 8})  # a strip model not listed
    assert iot.is_light_strip({"model": "KL420L5(US)"})
    assert not iot.is_light_strip(load_fixture("KL130(US)_1.0_1.8.11.json")["system"]["get_sysinfo"])


# -- the wire -------------------------------------------------------------------------------------


def test_power_requests_go_to_the_light_strip_module():
    # A plain "on" restores the light's own default (python-kasa iotbulb.py: ignore_default 0).
    assert iot.power_request(True, bulb=True, strip=True) == {STRIP: {"set_light_state": {"on_off": 1, "ignore_default": 0}}}
    assert iot.power_request(False, bulb=True, strip=True) == {STRIP: {"set_light_state": {"on_off": 0, "ignore_default": 1}}}
    assert iot.power_request(False, bulb=True) == {BULB: {"transition_light_state": {"on_off": 0, "ignore_default": 1}}}


def test_a_light_change_is_a_sysinfo_read_then_one_set_light_state():
    strip = IotDevice.from_fixture(FIXTURE)  # off; on-settings brightness 100, 3842 K
    change = light.Change(brightness=40, hue=200, saturation=70, transition=300)
    state = run(light.exchange(change), strip)
    assert state == light.LightState(on=True, brightness=40, color_temp=0, hue=200, saturation=70)
    assert strip.requests == [SYSINFO, {STRIP: {"set_light_state": {
        "on_off": 1, "ignore_default": 1, "brightness": 40, "hue": 200, "saturation": 70, "color_temp": 0,
        "transition_period": 300,
    }}}]


def test_a_reply_that_only_says_it_worked_gives_the_state_asked_for():
    """No recorded fixture has a strip's reply to set_light_state: one with nothing but its
    err_code is read as the light it was (its sysinfo), changed as asked."""
    strip = IotDevice.from_fixture(FIXTURE)

    def terse(request):
        reply = strip.handle(request)
        return {STRIP: {"set_light_state": {"err_code": 0}}} if STRIP in request else reply

    state = run(light.exchange(light.Change(color_temp=6500)), strip, terse)
    assert state == light.LightState(on=True, brightness=100, color_temp=6500, hue=0, saturation=0)


def test_a_strip_that_cannot_take_a_value_is_not_asked():
    strip = IotDevice.from_fixture(FIXTURE)
    with pytest.raises(errors.UsageError, match=r"--temp 9500 is out of range: 2500-9000 K on this KL430\(US\)"):
        run(light.exchange(light.Change(color_temp=9500)), strip)
    assert strip.requests == [SYSINFO]


# -- the emulator against the recorded device -------------------------------------------------------


def test_the_emulator_answers_as_the_recorded_strip_before_any_change():
    data = load_fixture(FIXTURE)
    recorded = data["system"]["get_sysinfo"]
    strip = IotDevice.from_fixture(FIXTURE, device_id=recorded["deviceId"], mac=recorded["mic_mac"])
    sysinfo = strip.handle(SYSINFO)["system"]["get_sysinfo"]
    assert sysinfo == {**recorded, "mic_mac": "E848B8000000"}  # the emulator keeps a MAC as 12 digits
    assert strip.handle({STRIP: {"get_light_state": {}}}) == {STRIP: {"get_light_state": data[STRIP]["get_light_state"]}}
    for method in ("get_light_details", "get_default_behavior"):
        assert strip.handle({STRIP: {method: {}}}) == {STRIP: {method: data[STRIP][method]}}
    assert strip.handle({"smartlife.iot.common.emeter": {"get_realtime": {}}}) == {
        "smartlife.iot.common.emeter": data["smartlife.iot.common.emeter"]
    }


def test_the_emulated_strip_has_no_lighting_service():
    strip = IotDevice.from_fixture(FIXTURE)
    for method in ("transition_light_state", "get_light_state"):
        assert strip.handle({BULB: {method: {"on_off": 1}}}) == {BULB: {"err_code": -1, "err_msg": "module not support"}}
    assert strip.handle({"system": {"set_relay_state": {"state": 1}}})["system"]["set_relay_state"]["err_code"] == -2
    assert not strip.is_on() and strip.requests[-1] == {"system": {"set_relay_state": {"state": 1}}}


def test_set_light_state_changes_the_strip_and_its_sysinfo():
    strip = IotDevice.from_fixture(FIXTURE)
    reply = strip.handle({STRIP: {"set_light_state": {"on_off": 1, "brightness": 30, "color_temp": 2700}}})
    assert reply == {STRIP: {"set_light_state": {
        "on_off": 1, "mode": "normal", "hue": 0, "saturation": 0, "color_temp": 2700, "brightness": 30,
        "length": 16, "transition": 500, "err_code": 0,
    }}}
    assert strip.light_state == {"on_off": 1, "mode": "normal", "hue": 0, "saturation": 0, "color_temp": 2700, "brightness": 30}
    assert strip.handle(SYSINFO)["system"]["get_sysinfo"]["light_state"] == strip.light_state
    off = strip.handle({STRIP: {"set_light_state": {"on_off": 0}}})[STRIP]["set_light_state"]
    assert off == {"on_off": 0, "length": 16, "transition": 500, "err_code": 0,
                   "dft_on_state": {"mode": "normal", "groups": [[0, 15, 0, 0, 30, 2700]]}}
    assert strip.light_state["dft_on_state"]["brightness"] == 30 and not strip.is_on()
    bad = strip.handle({STRIP: {"set_light_state": {"brightness": 101}}})
    assert bad[STRIP]["set_light_state"]["err_code"] == -3


def test_a_bulb_is_emulated_as_before():
    bulb = IotDevice.from_fixture("KL130(US)_1.0_1.8.11.json")
    assert not bulb.is_light_strip
    assert bulb.handle({STRIP: {"set_light_state": {"on_off": 1}}}) == {STRIP: dict(ERR_MODULE)}
    reply = bulb.handle({BULB: {"transition_light_state": {"on_off": 1, "brightness": 20}}})[BULB]["transition_light_state"]
    assert reply["on_off"] == 1 and reply["brightness"] == 20 and "length" not in reply
    assert bulb.handle({BULB: {"get_light_state": {}}})[BULB]["get_light_state"] == {**bulb.light_state, "err_code": 0}


# -- end to end: the CLI as a process -------------------------------------------------------------


@pytest.fixture
def resident(account, home):
    """A logged-in user of the emulated home, which has a KL430 light strip too ("TV Strip", in the
    cloud and on the LAN over XOR), with every Kasa device's LAN address learned by discovery."""
    device = home.cloud.add_iot_device(FIXTURE, "TV Strip")
    host = pick_loopback_host(udp_ports=(9999, 20002), tcp_ports=(9999,))
    with ExitStack() as stack:
        _serve(stack, home, "TV Strip", XorServer(device, host, 9999), device)
        account.env["TPCLOUD_DISCOVERY_TARGET"] = home.targets
        assert account("discover", "--timeout", "1.5").code == 0
        yield account


@pytest.fixture
def strip(resident, home) -> IotDevice:
    return home.devices["TV Strip"]


@pytest.fixture
def house_bulb(home) -> IotDevice:
    return home.cloud.by_alias["Hall Bulb"]


def run_json(user, *args):
    result = user(*args, "--json")
    assert result.code == 0, result
    return json.loads(result.stdout)


def lit(device: IotDevice) -> list[dict]:
    """What DEVICE was asked to change, in order (reads left out)."""
    return [r for r in device.requests if r != SYSINFO]


@pytest.mark.parametrize("via, route", [("local", "local"), ("cloud", "cloud")])
def test_switch_a_strip_on_and_off(resident, strip, via, route):
    on = run_json(resident, "switch", "TV Strip", "on", "--via", via)
    assert on["on"] is True and on["route"] == route and strip.is_on()
    assert resident("switch", "TV Strip", "off", "--via", via).stdout.strip() == "TV Strip: off"
    assert not strip.is_on()
    assert lit(strip) == [
        {STRIP: {"set_light_state": {"on_off": 1, "ignore_default": 0}}},
        {STRIP: {"set_light_state": {"on_off": 0, "ignore_default": 1}}},
    ]


def test_toggle_reads_the_strip_then_switches_it(resident, strip):
    assert resident("switch", "TV Strip", "toggle").stdout.strip() == "TV Strip: on"
    assert strip.requests[-2:] == [SYSINFO, {STRIP: {"set_light_state": {"on_off": 1, "ignore_default": 0}}}]
    assert strip.is_on()


def test_a_strip_among_other_devices_switches_with_its_own_module(resident, house_bulb, strip):
    result = resident("switch", "TV Strip", "Hall Bulb", "on")
    assert result.code == 0, result
    assert strip.is_on() and house_bulb.is_on()
    assert lit(strip)[-1] == {STRIP: {"set_light_state": {"on_off": 1, "ignore_default": 0}}}
    assert lit(house_bulb)[-1] == {BULB: {"transition_light_state": {"on_off": 1, "ignore_default": 0}}}


def test_state_of_a_strip(resident, strip):
    assert resident("state", "TV Strip").stdout.splitlines() == ["TV Strip: off", "  model: KL430(US)"]
    strip.handle({STRIP: {"set_light_state": {"on_off": 1, "brightness": 35}}})
    assert resident("state", "TV Strip").stdout.splitlines() == ["TV Strip: on", "  model: KL430(US)", "  brightness: 35%"]
    raw = run_json(resident, "state", "TV Strip", "--via", "cloud")
    assert raw["length"] == 16 and raw["light_state"]["on_off"] == 1 and raw["model"] == "KL430(US)"


def test_light_on_a_strip_over_the_lan(resident, strip):
    result = resident("light", "TV Strip", "--brightness", "50", "--temp", "2700", "--transition", "500")
    assert result.code == 0, result
    assert result.stdout.strip() == "TV Strip: on, brightness 50%, 2700 K"
    assert strip.is_on() and strip.light_state["brightness"] == 50 and strip.light_state["color_temp"] == 2700
    assert lit(strip) == [{STRIP: {"set_light_state": {
        "on_off": 1, "ignore_default": 1, "brightness": 50, "color_temp": 2700, "transition_period": 500,
    }}}]
    colour = run_json(resident, "light", "TV Strip", "--hue", "270", "--saturation", "100", "--brightness", "60")
    assert colour == {**colour, "on": True, "brightness": 60, "hue": 270, "saturation": 100, "color_temp": 0,
                      "route": "local", "wire": "xor"}
    assert (strip.light_state["hue"], strip.light_state["saturation"], strip.light_state["color_temp"]) == (270, 100, 0)
    text = resident("light", "TV Strip", "--hue", "270", "--saturation", "100", "--brightness", "60").stdout.strip()
    assert text == "TV Strip: on, brightness 60%, hue 270, saturation 100%"  # the README's example


def test_light_on_a_strip_through_the_cloud(resident, strip):
    data = run_json(resident, "light", "TV Strip", "--temp", "9000", "--via", "cloud")
    assert data["route"] == "cloud" and data["color_temp"] == 9000 and data["brightness"] == 100
    assert strip.light_state["color_temp"] == 9000
    assert lit(strip) == [{STRIP: {"set_light_state": {"on_off": 1, "ignore_default": 1, "color_temp": 9000}}}]


@pytest.mark.parametrize("temp", ["2000", "9500"])
def test_a_temperature_out_of_the_strips_range_is_refused(resident, strip, temp):
    result = resident("light", "TV Strip", "--temp", temp)
    assert result.code == 2
    assert one_line(result.stderr) == f"tpcloud: TV Strip: --temp {temp} is out of range: 2500-9000 K on this KL430(US)"
    assert lit(strip) == [] and not strip.is_on()
