"""Lights, energy meters and status LEDs, end to end: `tpcloud light|energy|led` as a process
against the fake cloud and device emulators on 127.x addresses, through `--via auto`.

The `house` is the emulated home of tests/doubles/home.py plus one device of each kind these
commands serve: a Kasa colour bulb, dimmer and energy plugs of both unit styles, a Kasa strip
with a meter per outlet (all over XOR), a Tapo colour bulb and a Tapo strip with a meter per
outlet (P304M; both KLAP v2).
"""

from __future__ import annotations

import datetime
import json
from contextlib import ExitStack

import pytest

from tests.conftest import PASSWORD, USERNAME, one_line
from tests.doubles.devices.smart import SmartDevice
from tests.doubles.home import _serve
from tests.doubles.wires import KlapServer, XorServer, pick_loopback_host


@pytest.fixture
def house(home):
    cloud = home.cloud
    with ExitStack() as stack:

        def kasa(alias, fixture=None, **kw):
            device = cloud.by_alias[alias] if fixture is None else cloud.add_iot_device(fixture, alias, **kw)
            host = pick_loopback_host(udp_ports=(9999, 20002), tcp_ports=(9999,))
            _serve(stack, home, alias, XorServer(device, host, 9999), device)

        kasa("Hall Bulb")  # KL130, colour
        kasa("Porch Dimmer")  # HS220
        kasa("Kettle")  # HS110 v4: mW, mV, mA, Wh
        kasa("Old Kettle", "HS110(EU)_1.0_1.2.5.json")  # HS110 v1: W, V, A, kWh
        kasa("Power Bar", "HS300(US)_2.0_1.0.12.json", child_aliases=["TV", "Lamp", "Fridge", "Router", "Fan", "Hifi"])
        def tapo(fixture, alias, mac, **kw):
            cloud.add_smart_device(fixture, alias, mac=mac)
            device = SmartDevice.from_fixture(fixture, nickname=alias, mac=mac, **kw)
            server = KlapServer(device, pick_loopback_host(udp_ports=(20002,)), username=USERNAME, password=PASSWORD)
            _serve(stack, home, alias, server, device)

        tapo("L530E(EU)_3.0_1.1.6.json", "Tapo Bulb", "A842A1000010")
        tapo("P304M(UK)_1.0_1.0.3.json", "Bench", "A86E84000011", child_nicknames=["Scope", "Iron", "Charger", "Lamp"])
        yield home


@pytest.fixture
def resident(account, house):
    """A logged-in user whose discovery reaches the house, with every Kasa device's address learned."""
    account.env["TPCLOUD_DISCOVERY_TARGET"] = house.targets
    assert account("discover", "--timeout", "1.5").code == 0
    return account


def run_json(user, *args):
    result = user(*args, "--json")
    assert result.code == 0, result
    return json.loads(result.stdout)


# -- LED --------------------------------------------------------------------------------------


def test_led_on_a_kasa_plug_is_led_off_inverted(resident, house):
    lamp = house.devices["Desk Lamp"]
    result = resident("led", "Desk Lamp", "off")
    assert result.code == 0, result
    assert result.stdout.strip() == "Desk Lamp: LED off"
    assert lamp.led_off == 1
    assert resident("led", "Desk Lamp").stdout.strip() == "Desk Lamp: LED off"
    data = run_json(resident, "led", "Desk Lamp", "on")
    assert lamp.led_off == 0
    assert data["led"] == "on" and data["route"] == "local" and data["wire"] == "xor"
    assert data["device_id"] == lamp.device_id and data["mode"] is None


def test_led_on_a_tapo_plug_sets_the_rule(resident, house):
    plug = house.devices["Living Room"]
    assert plug.responses["get_led_info"]["led_rule"] == "always"
    assert resident("led", "Living Room", "off").stdout.strip() == "Living Room: LED off"
    assert plug.responses["get_led_info"]["led_rule"] == "never" and plug.led_on() is False
    data = run_json(resident, "led", "Living Room")
    assert data["led"] == "off" and data["mode"] == "never" and data["wire"] == "klap"
    plug.responses["get_led_info"]["led_rule"] = "night_mode"
    assert resident("led", "Living Room").stdout.strip() == "Living Room: LED on (night_mode)"


def test_led_over_aes_and_through_the_cloud(resident, house):
    assert resident("led", "Bedroom", "on").code == 0
    assert house.devices["Bedroom"].led_on() is True
    data = run_json(resident, "led", "Kettle", "off", "--via", "cloud")
    assert data["route"] == "cloud" and house.devices["Kettle"].led_off == 1


def test_led_on_a_bulb_or_an_outlet_is_refused(resident, house):
    bulb = resident("led", "Hall Bulb", "on")
    assert bulb.code == 5 and one_line(bulb.stderr) == "tpcloud: Hall Bulb: the device has no status LED"
    assert resident("led", "Tapo Bulb").code == 5
    outlet = resident("led", "Office Strip/Printer", "off")
    assert outlet.code == 2 and 'name "Office Strip"' in one_line(outlet.stderr)


# -- energy -----------------------------------------------------------------------------------

TODAY = datetime.date.today()
LAST_MONTH = (TODAY.replace(day=1) - datetime.timedelta(days=1)).replace(day=15)


def test_energy_of_a_plug_in_mw_units(resident, house):
    kettle = house.devices["Kettle"]  # HS110(EU) v4: power_mw 61753, voltage_mv 230837, current_ma 451, total_wh 16323
    kettle.record_energy(TODAY, 120)
    kettle.record_energy(LAST_MONTH, 2000)
    result = resident("energy", "Kettle")
    assert result.code == 0, result
    assert result.stdout.strip() == (
        "Kettle: 61.8 W, 230.8 V, 0.451 A; today 0.120 kWh, this month 0.120 kWh, total 16.323 kWh"
    )
    data = run_json(resident, "energy", "Kettle")
    assert data["power_w"] == 61.753 and data["voltage_v"] == 230.837 and data["current_a"] == 0.451
    assert data["today_kwh"] == 0.12 and data["month_kwh"] == 0.12 and data["total_kwh"] == 16.323
    assert data["route"] == "local" and data["wire"] == "xor" and data["outlet_id"] is None


def test_energy_of_a_plug_in_w_units(resident, house):
    old = house.devices["Old Kettle"]  # HS110(EU) v1: power 0.928511, voltage 231.067823, current 0.014937, total 55.139
    old.record_energy(TODAY, 1500)
    data = run_json(resident, "energy", "Old Kettle")
    assert data["power_w"] == 0.928511 and data["voltage_v"] == 231.067823 and data["current_a"] == 0.014937
    assert data["today_kwh"] == 1.5 and data["total_kwh"] == 55.139
    history = run_json(resident, "energy", "Old Kettle", "--daily")
    assert history["entries"] == [{"date": TODAY.isoformat(), "kwh": 1.5, "source": "device"}]


def test_energy_history_by_day_and_by_month(resident, house):
    kettle = house.devices["Kettle"]
    kettle.record_energy(LAST_MONTH, 2000)
    kettle.record_energy(LAST_MONTH + datetime.timedelta(days=1), 250)
    daily = resident("energy", "Kettle", "--daily", "--month", str(LAST_MONTH.month), "--year", str(LAST_MONTH.year))
    assert daily.code == 0, daily
    period = f"{LAST_MONTH.year}-{LAST_MONTH.month:02d}"
    assert daily.stdout.splitlines() == [
        f"Kettle: kWh per day in {period}",
        f"  {LAST_MONTH.isoformat()}      2.000",
        f"  {(LAST_MONTH + datetime.timedelta(days=1)).isoformat()}      0.250",
        "  total           2.250",
    ]
    monthly = run_json(resident, "energy", "Kettle", "--monthly", "--year", str(LAST_MONTH.year))
    assert monthly["period"] == "monthly" and monthly["month"] is None
    assert monthly["entries"] == [{"date": period, "kwh": 2.25, "source": "device"}]


def test_energy_of_a_strip_outlet_and_of_the_whole_strip(resident, house):
    bar = house.devices["Power Bar"]  # HS300: a meter per outlet, addressed with context
    assert resident("list", "--refresh").code == 0
    bar.outlet_realtime[2] = {"voltage_mv": 120500, "current_ma": 830, "power_mw": 100250, "total_wh": 4000, "slot_id": 2}
    bar.record_energy(TODAY, 300, child_index=2)
    fridge = run_json(resident, "energy", "Power Bar/Fridge")
    assert fridge["power_w"] == 100.25 and fridge["today_kwh"] == 0.3 and fridge["outlet_id"] == bar.child_ids[2]
    assert bar.requests[-1]["context"] == {"child_ids": [bar.child_ids[2]]}
    whole = run_json(resident, "energy", "Power Bar")  # the fixture's 277 mW on the other five outlets
    assert whole["power_w"] == pytest.approx(100.25 + 5 * 0.277)
    assert whole["today_kwh"] == 0.3 and whole["voltage_v"] == 120.5


def test_energy_of_a_tapo_plug(resident, house):
    data = run_json(resident, "energy", "Living Room")  # P110(EU): current_power 0 mW, 46 Wh today, 430 Wh this month
    assert data["power_w"] == 0 and data["today_kwh"] == 0.046 and data["month_kwh"] == 0.43
    assert data["voltage_v"] is None and data["current_a"] is None and data["wire"] == "klap"
    text = resident("energy", "Living Room").stdout.strip()
    assert text == "Living Room: 0.0 W; today 0.046 kWh, this month 0.430 kWh"


def test_energy_history_of_a_tapo_plug(resident, house):
    plug = house.devices["Living Room"]
    plug.record_energy(TODAY, 120)
    plug.record_energy(LAST_MONTH, 2000)
    daily = resident("energy", "Living Room", "--daily")
    assert daily.code == 0, daily
    lines = daily.stdout.splitlines()
    assert lines[0] == f"Living Room: kWh per day in {TODAY.year}-{TODAY.month:02d}"
    assert lines[-2:] == [f"  {TODAY.isoformat()}      0.120", "  total           0.120"]
    assert len(lines) == 1 + TODAY.day + 1  # every day of the month so far, zeros included
    asked = plug.requests[-1]
    assert asked["method"] == "get_energy_data" and asked["params"]["interval"] == 1440
    monthly = run_json(resident, "energy", "Living Room", "--monthly", "--year", str(LAST_MONTH.year))
    months = dict((e["date"], e["kwh"]) for e in monthly["entries"])
    assert months[f"{LAST_MONTH.year}-{LAST_MONTH.month:02d}"] == 2.0 and monthly["wire"] == "klap"
    assert len(months) == (12 if LAST_MONTH.year < TODAY.year else TODAY.month)
    again = run_json(resident, "energy", "Living Room")
    assert again["today_kwh"] == 0.12


def test_energy_of_a_tapo_strip_outlet_and_of_the_whole_strip(resident, house):
    strip = house.devices["Bench"]  # P304M: the outlets measure, power only through get_current_power
    assert resident("list", "--refresh").code == 0
    iron = strip.child_ids()[1]
    strip.child_responses[iron]["get_current_power"]["current_power"] = 1500
    strip.record_energy(TODAY, 750, child_id=iron)
    outlet = run_json(resident, "energy", "Bench/Iron")
    assert outlet["power_w"] == 1500 and outlet["today_kwh"] == 0.75 and outlet["outlet_id"] == iron
    whole = run_json(resident, "energy", "Bench")
    assert whole["power_w"] == 1500 and whole["today_kwh"] == 0.75
    history = run_json(resident, "energy", "Bench/Iron", "--daily")
    assert history["entries"][-1] == {"date": TODAY.isoformat(), "kwh": 0.75, "source": "device"}
    assert strip.requests[-1]["method"] == "control_child" and strip.requests[-1]["params"]["device_id"] == iron


def test_energy_on_devices_without_a_meter(resident, house):
    for name in ("Desk Lamp", "Bedroom", "Office Strip/Printer"):
        result = resident("energy", name)
        assert result.code == 5, result
        assert one_line(result.stderr) == f"tpcloud: {name}: the device has no energy meter"
    history = resident("energy", "Bedroom", "--monthly")
    assert history.code == 5 and one_line(history.stderr) == "tpcloud: Bedroom: the device has no energy history"


@pytest.mark.parametrize("args, message", [
    (("--daily", "--monthly"), "cannot be combined"),
    (("--month", "3"), "--month goes with --daily"),
    (("--monthly", "--month", "3"), "--month goes with --daily"),
    (("--year", "2024"), "--year goes with"),
    (("--daily", "--month", "13"), "--month must be 1-12"),
    (("--monthly", "--year", "1999"), "--year must be 2000-"),
])
def test_energy_option_mistakes_are_usage_errors(account, args, message):
    result = account("energy", "Kettle", *args)
    assert result.code == 2 and message in one_line(result.stderr)


# -- lights -----------------------------------------------------------------------------------


def test_light_on_a_kasa_colour_bulb(resident, house):
    bulb = house.devices["Hall Bulb"]  # KL130, off
    result = resident("light", "Hall Bulb", "--brightness", "50", "--temp", "2700", "--transition", "500")
    assert result.code == 0, result
    assert result.stdout.strip() == "Hall Bulb: on, brightness 50%, 2700 K"
    assert bulb.is_on() and bulb.light_state["brightness"] == 50 and bulb.light_state["color_temp"] == 2700
    assert bulb.requests[-1]["smartlife.iot.smartbulb.lightingservice"]["transition_light_state"]["transition_period"] == 500
    data = run_json(resident, "light", "Hall Bulb", "--hue", "120", "--saturation", "80")
    assert data == {**data, "on": True, "hue": 120, "saturation": 80, "color_temp": 0, "brightness": 50, "route": "local"}
    assert resident("light", "Hall Bulb", "--hue", "300").stdout.strip() == "Hall Bulb: on, brightness 50%, hue 300, saturation 80%"
    too_warm = resident("light", "Hall Bulb", "--temp", "2000")
    assert too_warm.code == 2
    assert one_line(too_warm.stderr) == "tpcloud: Hall Bulb: --temp 2000 is out of range: 2500-9000 K on this KL130(US)"
    assert bulb.light_state["hue"] == 300


def test_light_on_a_kasa_bulb_through_the_cloud(resident, house):
    data = run_json(resident, "light", "Hall Bulb", "--brightness", "10", "--via", "cloud")
    assert data["route"] == "cloud" and house.devices["Hall Bulb"].light_state["brightness"] == 10


def test_light_on_a_kasa_dimmer(resident, house):
    dimmer = house.devices["Porch Dimmer"]  # HS220, off at 25 %
    assert resident("light", "Porch Dimmer", "--brightness", "40").stdout.strip() == "Porch Dimmer: on, brightness 40%"
    assert dimmer.is_on() and dimmer.brightness == 40
    dimmer.set_state(False)
    data = run_json(resident, "light", "Porch Dimmer", "--brightness", "70", "--transition", "1000")
    assert data["brightness"] == 70 and dimmer.is_on()
    assert dimmer.requests[-1] == {"smartlife.iot.dimmer": {"set_dimmer_transition": {"brightness": 70, "duration": 1000}}}
    colour = resident("light", "Porch Dimmer", "--temp", "3000")
    assert colour.code == 2 and "has no adjustable colour temperature" in one_line(colour.stderr)


def test_light_on_a_tapo_bulb(resident, house):
    bulb = house.devices["Tapo Bulb"]  # L530E: colour, 2500-6500 K
    result = resident("light", "Tapo Bulb", "--brightness", "30", "--temp", "4000")
    assert result.code == 0, result
    assert result.stdout.strip() == "Tapo Bulb: on, brightness 30%, 4000 K"
    assert (bulb.info["device_on"], bulb.info["brightness"], bulb.info["color_temp"]) == (True, 30, 4000)
    data = run_json(resident, "light", "Tapo Bulb", "--hue", "30", "--saturation", "60")
    assert data["wire"] == "klap" and (data["hue"], data["saturation"], data["color_temp"]) == (30, 60, 0)
    assert (bulb.info["hue"], bulb.info["saturation"], bulb.info["color_temp"]) == (30, 60, 0)
    too_cold = resident("light", "Tapo Bulb", "--temp", "7000")
    assert too_cold.code == 2 and "2500-6500 K on this L530" in one_line(too_cold.stderr)
    fade = resident("light", "Tapo Bulb", "--brightness", "5", "--transition", "100")
    assert fade.code == 2 and "takes no transition time" in one_line(fade.stderr)
    assert bulb.info["brightness"] == 30


def test_light_on_something_that_is_not_a_light(resident, house):
    for name in ("Desk Lamp", "Living Room", "Office Strip/Printer"):
        result = resident("light", name, "--brightness", "50")
        assert result.code == 2 and "is not a light" in one_line(result.stderr), result


@pytest.mark.parametrize("args, message", [
    ((), "nothing to set"),
    (("--transition", "100"), "nothing to set"),
    (("--brightness", "0"), "--brightness must be 1-100, not 0"),
    (("--hue", "361"), "--hue must be 0-360"),
    (("--saturation", "-1"), "--saturation must be 0-100"),
    (("--brightness", "5", "--transition", "3600001"), "--transition must be 0-3600000"),
    (("--temp", "3000", "--hue", "10"), "give one or the other"),
])
def test_light_values_every_light_refuses_are_caught_before_sending(account, fake_cloud, args, message):
    result = account("light", "Hall Bulb", *args)
    assert result.code == 2 and message in one_line(result.stderr)
    assert fake_cloud.count("passthrough") == 0
