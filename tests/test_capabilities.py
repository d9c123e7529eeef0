"""The capabilities in-process, against the device fakes seeded from real fixtures: how each
dialect's replies are read, units normalised, and values checked before anything is sent."""

from __future__ import annotations

import asyncio
import copy
import datetime

import pytest

from tests.doubles.devices.iot import IotDevice, load_fixture
from tests.doubles.devices.smart import SmartDevice
from tpcloud import errors
from tpcloud.capabilities import energy, led, light
from tpcloud.devices import Device, Outlet, Target

TODAY = datetime.date(2025, 6, 14)


def target_of(fake, outlet: int | None = None) -> Target:
    """The account's view of FAKE (or of one of its outlets)."""
    if isinstance(fake, IotDevice):
        device = Device(fake.device_id, fake.alias, fake.model, fake.device_type, True, "",
                        outlets=tuple(Outlet(c["id"], c["alias"]) for c in fake.children))
    else:
        device = Device(fake.device_id, fake.nickname, fake.model, fake.device_type, True, "")
    return Target(device, device.outlets[outlet] if outlet is not None else None)


def run(exchange, fake, outlet: int | None = None):
    """Run a capability's exchange with FAKE answering every request."""

    async def send(request):
        return fake.handle(request)

    return asyncio.run(exchange(target_of(fake, outlet), send))


# -- energy: the two IOT unit styles and SMART, against the fixtures' own values ----------------


@pytest.mark.parametrize("fixture, power, voltage, current, total", [
    ("HS110(EU)_1.0_1.2.5.json", 0.928511, 231.067823, 0.014937, 55.139),  # W, V, A, kWh
    ("HS110(EU)_4.0_1.0.4.json", 61.753, 230.837, 0.451, 16.323),  # mW, mV, mA, Wh
    ("KP115(US)_1.0_1.0.21.json", 0.0, 120.652, 0.0, 0.0),
])
def test_iot_readings_in_either_unit_style(fixture, power, voltage, current, total):
    assert energy.iot_realtime(load_fixture(fixture)["emeter"]["get_realtime"]) == energy.Reading(
        power_w=power, voltage_v=voltage, current_a=current, total_kwh=total
    )
    reading = run(energy.reading(TODAY), IotDevice.from_fixture(fixture))
    assert (reading.power_w, reading.voltage_v, reading.current_a, reading.total_kwh) == (power, voltage, current, total)


def test_iot_history_in_either_unit_style():
    old = {"day_list": [{"year": 2025, "month": 6, "day": 2, "energy": 0.25}, {"year": 2025, "month": 6, "day": 1, "energy": 1}]}
    new = {"day_list": [{"year": 2025, "month": 6, "day": 1, "energy_wh": 1000}, {"year": 2025, "month": 6, "day": 2, "energy_wh": 250}]}
    assert energy.iot_entries(old, "day_list") == energy.iot_entries(new, "day_list") == [
        ((2025, 6, 1), 1.0), ((2025, 6, 2), 0.25),
    ]
    with pytest.raises(errors.ProtocolError):
        energy.iot_entries({}, "month_list")


@pytest.mark.parametrize("fixture", ["HS110(EU)_1.0_1.2.5.json", "HS110(EU)_4.0_1.0.4.json"])
def test_today_and_this_month_come_from_the_history(fixture):
    plug = IotDevice.from_fixture(fixture)
    plug.record_energy(TODAY, 700)
    plug.record_energy(TODAY - datetime.timedelta(days=3), 300)
    plug.record_energy(datetime.date(2025, 5, 31), 5000)
    reading = run(energy.reading(TODAY), plug)
    assert reading.today_kwh == 0.7 and reading.month_kwh == 1.0
    history = run(energy.history(energy.MONTHLY, 2025, 6, TODAY), plug)
    assert history.entries == (("2025-05", 5.0), ("2025-06", 1.0))
    assert run(energy.reading(TODAY + datetime.timedelta(days=1)), plug).today_kwh == 0.0


def test_a_bulb_meter_reports_power_only():
    reading = run(energy.reading(TODAY), IotDevice.from_fixture("LB100(US)_1.0_1.8.11.json"))  # power_mw 4400
    assert reading.power_w == 4.4 and reading.voltage_v is None and reading.current_a is None


def test_a_strip_outlet_meter_is_addressed_by_context():
    strip = IotDevice.from_fixture("HS300(US)_2.0_1.0.12.json")
    strip.outlet_realtime[4] = {"power_mw": 5000, "voltage_mv": 120000, "current_ma": 40, "total_wh": 9}
    assert run(energy.reading(TODAY), strip, outlet=4).power_w == 5.0
    assert strip.requests[-1]["context"] == {"child_ids": [strip.child_ids[4]]}
    whole = run(energy.reading(TODAY), strip)
    assert len(strip.requests) == 1 + 6 and whole.power_w == pytest.approx(5.0 + 5 * 0.277)


@pytest.mark.parametrize("fixture, power, today, month, volts", [
    ("P110(EU)_1.0_1.2.3.json", 0.0, 0.046, 0.43, None),  # no get_emeter_data
    ("P115(EU)_1.0_1.2.3.json", 8.962, 0.0, 0.0, None),  # current_power is mW (get_current_power says 9 W)
])
def test_smart_readings(fixture, power, today, month, volts):
    reading = run(energy.reading(TODAY), SmartDevice.from_fixture(fixture))
    assert (reading.power_w, reading.today_kwh, reading.month_kwh, reading.voltage_v) == (power, today, month, volts)


def test_smart_voltage_and_current_come_from_emeter_data():
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json")
    plug.responses["get_emeter_data"] = {"current_ma": 33, "energy_wh": 971, "power_mw": 1003, "voltage_mv": 121215}  # KP125M's
    reading = run(energy.reading(TODAY), plug)
    assert reading.voltage_v == 121.215 and reading.current_a == 0.033


def local_midnight(day: datetime.date) -> int:
    return int(datetime.datetime(day.year, day.month, day.day).timestamp())


def test_smart_daily_history_counts_days_from_the_quarter():
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json")
    plug.record_energy(datetime.date(2025, 4, 30), 900)  # the day before the month asked for
    plug.record_energy(datetime.date(2025, 5, 1), 1200)
    plug.record_energy(datetime.date(2025, 5, 31), 35)
    history = run(energy.history(energy.DAILY, 2025, 5, TODAY), plug)
    params = plug.requests[-1]["params"]
    assert plug.requests[-1]["method"] == "get_energy_data"
    assert params == {"start_timestamp": local_midnight(datetime.date(2025, 4, 1)),
                      "end_timestamp": local_midnight(datetime.date(2025, 4, 1)), "interval": 1440}
    assert len(history.entries) == 31 and history.entries[0] == ("2025-05-01", 1.2)
    assert history.entries[-1] == ("2025-05-31", 0.035) and sum(kwh for _, kwh in history.entries) == pytest.approx(1.235)


def test_smart_history_stops_today():
    plug = SmartDevice.from_fixture("P115(EU)_1.0_1.2.3.json")
    plug.record_energy(TODAY, 500)
    plug.record_energy(datetime.date(2025, 1, 2), 2000)
    daily = run(energy.history(energy.DAILY, 2025, 6, TODAY), plug)
    assert [label for label, _ in daily.entries] == [f"2025-06-{d:02d}" for d in range(1, 15)]
    assert daily.entries[-1] == ("2025-06-14", 0.5)
    monthly = run(energy.history(energy.MONTHLY, 2025, 6, TODAY), plug)
    assert plug.requests[-1]["params"]["interval"] == 43200
    assert plug.requests[-1]["params"]["start_timestamp"] == local_midnight(datetime.date(2025, 1, 1))
    assert monthly.entries == (("2025-01", 2.0), ("2025-02", 0.0), ("2025-03", 0.0), ("2025-04", 0.0),
                               ("2025-05", 0.0), ("2025-06", 0.5))
    assert monthly.month is None


def test_smart_today_and_this_month_follow_the_recorded_days():
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json")
    today = datetime.date.today()
    plug.record_energy(today, 250)
    reading = run(energy.reading(today), plug)
    assert reading.today_kwh == 0.25 and reading.month_kwh == 0.25


@pytest.mark.parametrize("result", [{}, {"data": "12"}, {"data": [1, -2]}, {"data": [True]}, {"data": [None]}])
def test_a_malformed_smart_history_is_a_protocol_error(result):
    with pytest.raises(errors.ProtocolError, match="not a list of Wh figures"):
        energy.smart_history_data(result)


def test_a_smart_device_without_history_says_so():
    with pytest.raises(errors.DeviceError, match="^the device has no energy history$"):
        run(energy.history(energy.DAILY, 2025, 6, TODAY), SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0.json"))


P304M = "P304M(UK)_1.0_1.0.3.json"


def smart_strip_target(strip: SmartDevice, outlet: int | None = None) -> Target:
    device = Device(strip.device_id, strip.nickname, strip.model, strip.device_type, True, "",
                    outlets=tuple(Outlet(i, strip.child_nickname(i)) for i in strip.child_ids()))
    return Target(device, device.outlets[outlet] if outlet is not None else None)


def run_on(exchange, fake, target):
    async def send(request):
        return fake.handle(request)

    return asyncio.run(exchange(target, send))


def test_a_tapo_strip_meters_each_outlet_through_control_child():
    strip = SmartDevice.from_fixture(P304M, nickname="Bench")
    second = strip.child_ids()[1]
    assert "current_power" not in strip.child_responses[second]["get_energy_usage"]  # as recorded
    strip.child_responses[second]["get_current_power"]["current_power"] = 60  # W
    strip.record_energy(datetime.date(2025, 6, 2), 1500, child_id=second)
    outlet = run_on(energy.reading(TODAY), strip, smart_strip_target(strip, 1))
    assert outlet.power_w == 60
    asked = [(r["method"], r["params"]["device_id"], r["params"]["requestData"]) for r in strip.requests]
    assert asked == [("control_child", second, {"method": m}) for m in ("get_energy_usage", "get_emeter_data", "get_current_power")]
    whole = run_on(energy.reading(TODAY), strip, smart_strip_target(strip))
    recorded = [strip.child_responses[i]["get_energy_usage"]["month_energy"] for i in strip.child_ids() if i != second]
    assert whole.power_w == 60 and whole.month_kwh == pytest.approx(sum(recorded) / 1000)  # none this month on `second`
    history = run_on(energy.history(energy.DAILY, 2025, 6, TODAY), strip, smart_strip_target(strip))
    assert dict(history.entries)["2025-06-02"] == 1.5 and len(history.entries) == 14


def test_a_tapo_strip_parent_has_no_meter_of_its_own():
    strip = SmartDevice.from_fixture(P304M)
    assert strip.handle({"method": "get_energy_usage"})["error_code"] == -1002  # as recorded: only the outlets answer


@pytest.mark.parametrize("fake", [
    lambda: IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json"),
    lambda: IotDevice.from_fixture("HS220(US)_1.0_1.5.7.json"),
    lambda: SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0.json"),
    lambda: SmartDevice.from_fixture("L530E(EU)_3.0_1.1.6.json"),
])
def test_a_device_without_a_meter_says_so(fake):
    with pytest.raises(errors.DeviceError, match="^the device has no energy meter$"):
        run(energy.reading(TODAY), fake())


@pytest.mark.parametrize("exchange, what", [
    (energy.reading(TODAY), "energy meter"),
    (energy.history(energy.DAILY, 2025, 6, TODAY), "energy history"),
])
def test_a_smart_device_answering_params_error_has_no_meter(exchange, what):
    # python-kasa smart/modules/energy.py counts PARAMS_ERROR (-1008) as a method the device
    # lacks (_OPTIONAL_METHOD_ERRORS), as an S515D answers; only for energy, where it means that.
    plug = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0.json")

    async def send(request):
        return {"error_code": -1008}

    with pytest.raises(errors.DeviceError, match=f"^the device has no {what}$"):
        asyncio.run(exchange(target_of(plug), send))


def test_a_device_error_that_is_not_a_missing_meter_is_kept():
    plug = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json")
    with pytest.raises(errors.DeviceError, match="err_code -3"):
        run(energy.history(energy.DAILY, 1999, 6, TODAY), plug)


# -- LED --------------------------------------------------------------------------------------


def test_iot_led_is_the_inverse_of_led_off():
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json")
    assert run(led.exchange(False), plug) == led.LedState(on=False) and plug.led_off == 1
    assert run(led.exchange(None), plug) == led.LedState(on=False)
    assert run(led.exchange(True), plug) == led.LedState(on=True) and plug.led_off == 0


def test_smart_led_rules():
    strip = SmartDevice.from_fixture("P300(EU)_1.0_1.0.15.json")  # led_rule "never"
    assert run(led.exchange(None), strip) == led.LedState(on=False, mode="never")
    assert run(led.exchange(True), strip) == led.LedState(on=True, mode="always") and strip.led_on()


def test_smart_led_sends_the_device_settings_back_with_the_new_rule():
    plug = SmartDevice.from_fixture("P304M(UK)_1.0_1.0.3.json")  # night_mode rule, brightness settings
    before = copy.deepcopy(plug.responses["get_led_info"])
    run(led.exchange(False), plug)
    assert [r["method"] for r in plug.requests] == ["get_led_info", "set_led_info"]
    assert plug.requests[-1]["params"] == {**before, "led_rule": "never"}
    assert plug.responses["get_led_info"]["bri_config"] == before["bri_config"] and not plug.led_on()


@pytest.mark.parametrize("fake", [
    lambda: IotDevice.from_fixture("KL130(US)_1.0_1.8.11.json"),
    lambda: SmartDevice.from_fixture("L530E(EU)_3.0_1.1.6.json"),
])
@pytest.mark.parametrize("on", [None, True])
def test_bulbs_have_no_status_led(fake, on):
    with pytest.raises(errors.DeviceError, match="^the device has no status LED$"):
        run(led.exchange(on), fake())


# -- lights -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture, dimmable, color, temp_range, transition", [
    ("KL130(US)_1.0_1.8.11.json", True, True, (2500, 9000), True),
    ("KL125(US)_4.0_1.0.5.json", True, True, (2500, 6500), True),
    ("LB100(US)_1.0_1.8.11.json", True, False, None, True),  # is_color 0, is_variable_color_temp 0
    ("HS220(US)_1.0_1.5.7.json", True, False, None, True),  # a dimmer
])
def test_what_a_kasa_light_can_do_comes_from_its_sysinfo(fixture, dimmable, color, temp_range, transition):
    sysinfo = load_fixture(fixture)["system"]["get_sysinfo"]
    abilities = light.IotLight().abilities(sysinfo)
    assert (abilities.dimmable, abilities.color, abilities.temp_range, abilities.transition) == (
        dimmable, color, temp_range, transition
    )


def test_what_a_tapo_light_can_do_comes_from_its_device_info():
    info = SmartDevice.from_fixture("L530E(EU)_3.0_1.1.6.json").info
    assert light.SmartLight().abilities(info) == light.Abilities("L530", True, True, (2500, 6500), transition=False)
    dimmer_only = {k: v for k, v in info.items() if k not in ("hue", "saturation", "color_temp", "color_temp_range")}
    assert light.SmartLight().abilities(dimmer_only) == light.Abilities("L530", True, False, None, transition=False)
    with pytest.raises(errors.UsageError, match="not a light"):
        light.SmartLight().abilities(SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json").info)


@pytest.mark.parametrize("fixture, change, message", [
    ("KL125(US)_4.0_1.0.5.json", light.Change(color_temp=9000), "--temp 9000 is out of range: 2500-6500 K on this KL125(US)"),
    ("LB100(US)_1.0_1.8.11.json", light.Change(hue=10, saturation=10), "has no colour (it takes --brightness)"),
    ("LB100(US)_1.0_1.8.11.json", light.Change(color_temp=3000), "has no adjustable colour temperature"),
    ("HS220(US)_1.0_1.5.7.json", light.Change(hue=10), "this HS220(US) has no colour"),
    ("HS103(US)_2.1_1.1.4.json", light.Change(brightness=10), "this HS103(US) is not a light"),
])
def test_values_a_kasa_light_cannot_take_are_refused_before_it_is_asked(fixture, change, message):
    fake = IotDevice.from_fixture(fixture)
    with pytest.raises(errors.UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(light.exchange(change), fake)
    assert [list(r) for r in fake.requests] == [["system"]]  # only the sysinfo read


def test_a_kasa_bulb_change_is_one_request_and_its_reply_is_the_new_state():
    bulb = IotDevice.from_fixture("KL125(US)_4.0_1.0.5.json")
    state = run(light.exchange(light.Change(brightness=60, hue=200, saturation=40, transition=0)), bulb)
    assert state == light.LightState(on=True, brightness=60, color_temp=0, hue=200, saturation=40)
    assert bulb.requests[-1] == {"smartlife.iot.smartbulb.lightingservice": {"transition_light_state": {
        "on_off": 1, "ignore_default": 1, "brightness": 60, "hue": 200, "saturation": 40, "color_temp": 0,
        "transition_period": 0,
    }}}



def test_a_kl135_takes_2500_to_9000_kelvin():
    # python-kasa 0.12's model table: KL135 2500-9000 K (it was 2500-6500 K here).
    sysinfo = {"model": "KL135(US)", "light_state": {"on_off": 1}, "is_dimmable": 1, "is_color": 1,
               "is_variable_color_temp": 1}
    assert light.IotLight().abilities(sysinfo).temp_range == (2500, 9000)
