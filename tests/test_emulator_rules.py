"""The device emulators' countdown timers, schedules and clocks, through ``handle`` (the dialect).

IOT (``count_down``, ``schedule``, ``time`` and the bulbs' ``smartlife.iot.common.*``) and SMART
(``*_countdown_rule*``, ``*_schedule_rule*``, ``*_device_time``), per outlet on strips. The
choices these rely on are listed in the module docstrings of tests/doubles/devices/iot.py and
smart.py.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import time
import zoneinfo

import pytest

from tests.doubles.devices.iot import FIXTURES_DIR, IotDevice
from tests.doubles.devices.smart import SmartDevice

SCHED = "schedule"
CD = "count_down"
BULB_SCHED = "smartlife.iot.common.schedule"
BULB_TIME = "smartlife.iot.common.timesetting"

# softScheck's add_rule example
IOT_RULE = {"stime_opt": 0, "wday": [1, 0, 0, 1, 1, 0, 0], "smin": 1014, "enable": 1, "repeat": 1,
            "etime_opt": -1, "name": "lights on", "eact": -1, "month": 0, "sact": 1, "year": 0,
            "longitude": 0, "day": 0, "force": 0, "latitude": 0, "emin": 0}
P110_UK = "P110(UK)_1.0_1.3.0"
EP40M = "EP40M(US)_1.0_1.1.0"
SMART_RULE = {"day": 20, "desired_states": {"on": True}, "e_action": "none", "e_min": 0,
              "e_type": "normal", "enable": True, "mode": "repeat", "month": 1, "s_min": 710,
              "s_type": "normal", "time_offset": 0, "week_day": 127, "year": 2024}


def fixture(path: str) -> dict:
    return json.loads((FIXTURES_DIR / path).read_text(encoding="utf-8"))


def iot(dev: IotDevice, module: str, method: str, params: dict | None = None, child: str | None = None) -> dict:
    request: dict = {module: {method: {} if params is None else params}}
    if child is not None:
        request["context"] = {"child_ids": [child]}
    reply = dev.handle(request)[module]
    return reply if "err_code" in reply and method not in reply else reply[method]


def smart(dev: SmartDevice, method: str, params: dict | None = None, child: str | None = None) -> dict:
    request = {"method": method, "params": {} if params is None else params}
    if child is None:
        return dev.handle(request)
    outer = dev.handle({"method": "control_child", "params": {"device_id": child, "requestData": request}})
    assert outer["error_code"] == 0
    return outer["result"]["responseData"]


def wait_for(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# ====================================================================== IOT: schedule

def test_iot_kp105_schedule_reads_back_as_recorded():
    dev = IotDevice.from_fixture("KP105(UK)_1.0_1.0.5")
    recorded = fixture("iot/KP105(UK)_1.0_1.0.5.json")["schedule"]["get_rules"]
    assert iot(dev, SCHED, "get_rules") == recorded
    assert dev.rules("schedule") == recorded["rule_list"]
    assert dev.schedule_enabled() == 1
    assert iot(dev, SCHED, "get_next_action") == {"type": -1, "err_code": 0}


def test_iot_schedule_add_list_edit_delete():
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    assert iot(dev, SCHED, "get_rules") == {"enable": 0, "rule_list": [], "version": 2, "err_code": 0}
    # several methods of the module in one request run in the order given
    reply = dev.handle({SCHED: {"add_rule": IOT_RULE, "set_overall_enable": {"enable": 1}, "get_rules": {}}})[SCHED]
    rid = reply["add_rule"]["id"]
    assert len(rid) == 32 and rid == rid.upper() and int(rid, 16) >= 0
    assert reply["set_overall_enable"] == {"err_code": 0}
    assert reply["get_rules"]["enable"] == 1
    assert reply["get_rules"]["rule_list"] == [{**IOT_RULE, "id": rid}]  # kept as sent, plus its id

    sunset = {**IOT_RULE, "stime_opt": 2, "soffset": -15, "smin": 0, "sact": 0, "name": "off at dusk"}
    rid2 = iot(dev, SCHED, "add_rule", sunset)["id"]
    assert rid2 != rid
    assert [r["id"] for r in dev.rules("schedule")] == [rid, rid2]

    assert iot(dev, SCHED, "edit_rule", {**IOT_RULE, "id": rid, "smin": 420, "wday": [0, 1, 1, 1, 1, 1, 0]}) == {"err_code": 0}
    assert dev.rules("schedule")[0] == {**IOT_RULE, "id": rid, "smin": 420, "wday": [0, 1, 1, 1, 1, 1, 0]}
    assert iot(dev, SCHED, "edit_rule", {"id": rid2, "enable": 0}) == {"err_code": 0}  # partial edit
    assert dev.rules("schedule")[1] == {**sunset, "id": rid2, "enable": 0}

    assert iot(dev, SCHED, "delete_rule", {"id": rid}) == {"err_code": 0}
    assert [r["id"] for r in dev.rules("schedule")] == [rid2]
    assert iot(dev, SCHED, "delete_all_rules") == {"err_code": 0}
    assert iot(dev, SCHED, "get_rules") == {"enable": 1, "rule_list": [], "version": 2, "err_code": 0}
    assert iot(dev, SCHED, "set_overall_enable", {"enable": 0}) == {"err_code": 0}
    assert dev.schedule_enabled() == 0


@pytest.mark.parametrize("bad", [
    {"smin": 1440}, {"smin": -1}, {"smin": "10"}, {"stime_opt": 3}, {"stime_opt": True},
    {"wday": [1, 0, 0, 1, 1, 0]}, {"wday": [1, 0, 0, 1, 1, 0, 2]}, {"wday": "1001100"},
    {"sact": 2}, {"sact": -1}, {"enable": 2}, {"enable": True}, {"soffset": 2000},
    {"repeat": 3}, {"eact": 5}, {"name": 7},
])
def test_iot_schedule_validation_changes_nothing(bad):
    dev = IotDevice.from_fixture("KP105(UK)_1.0_1.0.5")
    before = dev.rules("schedule")
    assert iot(dev, SCHED, "add_rule", {**IOT_RULE, **bad})["err_code"] == -3
    assert iot(dev, SCHED, "edit_rule", {**before[0], **bad})["err_code"] == -3
    assert dev.rules("schedule") == before


@pytest.mark.parametrize("missing", ["stime_opt", "smin", "wday", "sact", "enable"])
def test_iot_schedule_rule_needs_its_fields(missing):
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    rule = {k: v for k, v in IOT_RULE.items() if k != missing}
    assert iot(dev, SCHED, "add_rule", rule)["err_code"] == -3
    assert dev.rules("schedule") == []


def test_iot_schedule_unknown_ids_and_bad_overall_enable():
    dev = IotDevice.from_fixture("KP105(UK)_1.0_1.0.5")
    before = dev.rules("schedule")
    assert iot(dev, SCHED, "edit_rule", {**IOT_RULE, "id": "0" * 32})["err_code"] == -3
    assert iot(dev, SCHED, "delete_rule", {"id": "0" * 32})["err_code"] == -3
    assert iot(dev, SCHED, "delete_rule", {})["err_code"] == -3
    assert iot(dev, SCHED, "set_overall_enable", {"enable": 3})["err_code"] == -3
    assert dev.rules("schedule") == before and dev.schedule_enabled() == 1


def test_iot_schedule_is_full_at_32_rules():
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    reply = dev.handle({SCHED: {"add_rule": IOT_RULE}})
    assert reply[SCHED]["add_rule"]["err_code"] == 0
    for _ in range(31):
        assert iot(dev, SCHED, "add_rule", IOT_RULE)["err_code"] == 0
    before = dev.rules("schedule")
    assert len(before) == 32 and len({r["id"] for r in before}) == 32
    assert iot(dev, SCHED, "add_rule", IOT_RULE) == {"err_code": -10, "err_msg": "table is full"}
    assert dev.rules("schedule") == before


@pytest.mark.parametrize("name", ["HS300(US)_2.0_1.0.12", "KP303(US)_2.0_1.0.9"])
def test_iot_strip_schedule_and_countdown_per_outlet(name):
    dev = IotDevice.from_fixture(name)
    ids = dev.child_ids
    r0 = iot(dev, SCHED, "add_rule", IOT_RULE, child=ids[0])["id"]
    r1 = iot(dev, SCHED, "add_rule", {**IOT_RULE, "sact": 0}, child=ids[1])["id"]
    assert [r["id"] for r in iot(dev, SCHED, "get_rules", child=ids[0])["rule_list"]] == [r0]
    assert [r["id"] for r in iot(dev, SCHED, "get_rules", child=ids[1])["rule_list"]] == [r1]
    assert iot(dev, SCHED, "get_rules", child=ids[2])["rule_list"] == []
    assert dev.rules("schedule", 1) == [{**IOT_RULE, "sact": 0, "id": r1}]
    # a rule of one outlet is unknown to another
    assert iot(dev, SCHED, "delete_rule", {"id": r0}, child=ids[1])["err_code"] == -3
    assert iot(dev, SCHED, "delete_all_rules", child=ids[0]) == {"err_code": 0}
    assert dev.rules("schedule", 0) == [] and len(dev.rules("schedule", 1)) == 1
    # the two-digit index names an outlet too
    assert iot(dev, SCHED, "get_rules", child="01")["rule_list"][0]["id"] == r1

    c2 = iot(dev, CD, "add_rule", {"enable": 1, "delay": 1800, "act": 1, "name": "turn on"}, child=ids[2])["id"]
    assert iot(dev, CD, "add_rule", {"enable": 1, "delay": 60, "act": 0, "name": "off"}, child=ids[0])["err_code"] == 0
    assert [r["id"] for r in iot(dev, CD, "get_rules", child=ids[2])["rule_list"]] == [c2]
    assert iot(dev, CD, "get_rules", child=ids[1])["rule_list"] == []
    # an unknown outlet is an invalid argument, and changes nothing
    assert iot(dev, SCHED, "add_rule", IOT_RULE, child="F" * 42)["err_code"] == -3
    assert iot(dev, CD, "delete_all_rules", child="F" * 42)["err_code"] == -3
    assert len(dev.rules("count_down", 2)) == 1


def test_iot_strip_countdown_fires_on_its_outlet_only():
    dev = IotDevice.from_fixture("KP303(US)_2.0_1.0.9")
    dev.set_state(False)
    dev.time_scale = 10
    iot(dev, CD, "add_rule", {"enable": 1, "delay": 2, "act": 1, "name": "on"}, child=dev.child_ids[1])
    assert wait_for(lambda: dev.child_state(1) == 1)
    assert dev.child_state(0) == 0 and dev.child_state(2) == 0
    assert dev.rules("count_down", 1)[0]["enable"] == 0 and dev.rules("count_down", 1)[0]["remain"] == 0


def test_iot_strip_wide_countdown_switches_every_outlet():
    dev = IotDevice.from_fixture("KP303(US)_2.0_1.0.9")
    dev.set_state(True)
    assert iot(dev, CD, "add_rule", {"enable": 1, "delay": 90, "act": 0, "name": "all off"})["err_code"] == 0
    assert dev.rules("count_down", 0) == []
    dev.advance_timers(90)
    assert [dev.child_state(i) for i in range(3)] == [0, 0, 0]


# ====================================================================== IOT: count_down

def test_iot_countdown_add_list_edit_delete():
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    assert iot(dev, CD, "get_rules") == {"rule_list": [], "err_code": 0}
    rid = iot(dev, CD, "add_rule", {"enable": 1, "delay": 1800, "act": 1, "name": "turn on"})["id"]
    assert len(rid) == 32 and rid == rid.upper()
    (rule,) = iot(dev, CD, "get_rules")["rule_list"]
    assert list(rule) == ["id", "name", "enable", "delay", "act", "remain"]
    assert rule["id"] == rid and rule["name"] == "turn on" and rule["enable"] == 1
    assert rule["delay"] == 1800 and rule["act"] == 1 and 1795 <= rule["remain"] <= 1800

    assert iot(dev, CD, "edit_rule", {"id": rid, "enable": 1, "delay": 60, "act": 0, "name": "off"}) == {"err_code": 0}
    (rule,) = dev.rules("count_down")
    assert (rule["delay"], rule["act"], rule["name"]) == (60, 0, "off") and 55 <= rule["remain"] <= 60
    assert iot(dev, CD, "edit_rule", {"id": rid, "enable": 0}) == {"err_code": 0}  # stops it
    assert dev.rules("count_down")[0]["remain"] == 0 and dev.rules("count_down")[0]["enable"] == 0

    assert iot(dev, CD, "delete_rule", {"id": "0" * 32})["err_code"] == -3
    assert iot(dev, CD, "delete_rule", {"id": rid}) == {"err_code": 0}
    assert dev.rules("count_down") == []
    iot(dev, CD, "add_rule", {"enable": 1, "delay": 5, "act": 0, "name": "x"})
    assert iot(dev, CD, "delete_all_rules") == {"err_code": 0}
    assert dev.rules("count_down") == []


def test_iot_only_one_countdown_rule():
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    iot(dev, CD, "add_rule", {"enable": 0, "delay": 10, "act": 1, "name": "a"})
    before = dev.rules("count_down")
    assert iot(dev, CD, "add_rule", {"enable": 1, "delay": 20, "act": 0, "name": "b"}) == {"err_code": -10, "err_msg": "table is full"}
    assert dev.rules("count_down") == before
    # the usual way: delete all, then add, in one request
    reply = dev.handle({CD: {"delete_all_rules": None, "add_rule": {"enable": 1, "delay": 20, "act": 0, "name": "b"}}})
    assert reply[CD]["delete_all_rules"] == {"err_code": 0} and reply[CD]["add_rule"]["err_code"] == 0
    assert [r["name"] for r in dev.rules("count_down")] == ["b"]


@pytest.mark.parametrize("bad", [{"delay": 0}, {"delay": -5}, {"delay": "60"}, {"delay": 1.5}, {"act": 2},
                                 {"act": True}, {"enable": 2}, {"name": 3}, {"delay": None}])
def test_iot_countdown_validation_changes_nothing(bad):
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    good = {"enable": 0, "delay": 60, "act": 1, "name": "x"}
    assert iot(dev, CD, "add_rule", {**good, **bad})["err_code"] == -3
    assert dev.rules("count_down") == []
    rid = iot(dev, CD, "add_rule", good)["id"]
    before = dev.rules("count_down")
    assert iot(dev, CD, "edit_rule", {**good, **bad, "id": rid})["err_code"] == -3
    assert dev.rules("count_down") == before


def test_iot_countdown_fires_after_scaled_time_and_stays_listed():
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    dev.set_state(False)
    dev.time_scale = 2000  # a 45-minute timer fires in 1.35 s
    rid = iot(dev, CD, "add_rule", {"enable": 1, "delay": 2700, "act": 1, "name": "turn on"})["id"]
    first = dev.rules("count_down")[0]["remain"]
    time.sleep(0.05)
    assert not dev.is_on() and dev.rules("count_down")[0]["remain"] < first  # remain counts down
    assert wait_for(dev.is_on)
    assert iot(dev, CD, "get_rules")["rule_list"] == [
        {"id": rid, "name": "turn on", "enable": 0, "delay": 2700, "act": 1, "remain": 0}]
    assert dev.handle({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]["relay_state"] == 1


def test_iot_countdown_fires_when_polled_through_handle():
    dev = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4")
    dev.set_state(True)
    dev.time_scale = 10
    iot(dev, CD, "add_rule", {"enable": 1, "delay": 2, "act": 0, "name": "off"})
    assert wait_for(lambda: dev.handle({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]["relay_state"] == 0)
    # a disabled rule never fires
    iot(dev, CD, "delete_all_rules")
    iot(dev, CD, "add_rule", {"enable": 0, "delay": 1, "act": 1, "name": "on"})
    dev.advance_timers(10)
    assert not dev.is_on()


def test_iot_dimmer_countdown_switches_the_relay():
    dev = IotDevice.from_fixture("HS220(US)_1.0_1.5.7")
    dev.set_state(False)
    iot(dev, "count_down", "add_rule", {"enable": 1, "delay": 30, "act": 1, "name": "on"})
    dev.advance_timers(29)
    assert not dev.is_on()
    dev.advance_timers(1)
    assert dev.is_on()


# ====================================================================== IOT: bulbs, missing modules

def test_iot_bulb_uses_its_own_modules():
    dev = IotDevice.from_fixture("LB100(US)_1.0_1.8.11")
    reply = dev.handle({CD: {"get_rules": {}}, SCHED: {"get_rules": {}}, "time": {"get_time": {}}})
    assert reply == {m: {"err_code": -1, "err_msg": "module not support"} for m in (CD, SCHED, "time")}
    recorded = fixture("iot/LB100(US)_1.0_1.8.11.json")[BULB_SCHED]["get_rules"]
    assert iot(dev, BULB_SCHED, "get_rules") == recorded
    light = {"on_off": 1, "mode": "normal", "brightness": 40, "color_temp": 2700, "hue": 0, "saturation": 0}
    rule = {**IOT_RULE, "sact": 2, "s_light": light}
    rid = iot(dev, BULB_SCHED, "add_rule", rule)["id"]
    assert dev.rules("schedule") == [{**rule, "id": rid}]
    assert iot(dev, BULB_SCHED, "add_rule", {**IOT_RULE, "sact": 2})["err_code"] == -3  # no s_light
    assert iot(dev, BULB_SCHED, "add_rule", {**IOT_RULE, "sact": 2, "s_light": [1]})["err_code"] == -3
    assert len(dev.rules("schedule")) == 1
    assert iot(dev, BULB_TIME, "get_timezone") == {"index": 38, "err_code": 0}
    with pytest.raises(ValueError):
        dev.rules("count_down")


def test_iot_plug_answers_the_bulb_modules_and_sact_2_as_errors():
    dev = IotDevice.from_fixture("KP105(UK)_1.0_1.0.5")
    reply = dev.handle({BULB_SCHED: {"get_rules": {}}, BULB_TIME: {"get_time": {}}})
    assert reply == {m: {"err_code": -1, "err_msg": "module not support"} for m in (BULB_SCHED, BULB_TIME)}
    assert iot(dev, SCHED, "add_rule", {**IOT_RULE, "sact": 2, "s_light": {"on_off": 1}})["err_code"] == -3


def test_iot_remove_module_and_method():
    dev = IotDevice.from_fixture("HS300(US)_2.0_1.0.12")
    dev.remove_module(CD)
    dev.remove_method(SCHED, "add_rule")
    reply = dev.handle({"context": {"child_ids": [dev.child_ids[0]]}, CD: {"get_rules": {}},
                        SCHED: {"add_rule": IOT_RULE, "get_rules": {}}})
    assert reply[CD] == {"err_code": -1, "err_msg": "module not support"}
    assert reply[SCHED]["add_rule"] == {"err_code": -2, "err_msg": "member not support"}
    assert reply[SCHED]["get_rules"]["rule_list"] == []
    dev.remove_module("time")
    assert dev.handle({"time": {"get_time": {}}}) == {"time": {"err_code": -1, "err_msg": "module not support"}}


# ====================================================================== IOT: time

def test_iot_time_default_zone_and_skew():
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    assert iot(dev, "time", "get_timezone") == {"index": 38, "err_code": 0}
    dev.clock_skew = 3 * 3600 + 300
    t = iot(dev, "time", "get_time")
    assert t.pop("err_code") == 0
    got = datetime.datetime(t["year"], t["month"], t["mday"], t["hour"], t["min"], t["sec"], tzinfo=datetime.timezone.utc)
    expected = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=dev.clock_skew)
    assert abs((got - expected).total_seconds()) < 3


def test_iot_set_time_and_timezone():
    dev = IotDevice.from_fixture("KP303(US)_2.0_1.0.9")
    new = {"year": 2024, "month": 7, "mday": 1, "hour": 9, "min": 30, "sec": 0}
    # time belongs to the device: a context is ignored
    reply = dev.handle({"context": {"child_ids": [dev.child_ids[1]]}, "time": {"set_timezone": {**new, "index": 39}}})
    assert reply["time"]["set_timezone"] == {"err_code": 0}
    assert iot(dev, "time", "get_timezone") == {"index": 39, "err_code": 0}
    t = iot(dev, "time", "get_time")
    assert (t["year"], t["month"], t["mday"], t["hour"], t["min"]) == (2024, 7, 1, 9, 30) and t["sec"] <= 2
    # London in July is UTC+1
    assert abs(dev.device_now().timestamp() - datetime.datetime(2024, 7, 1, 8, 30, tzinfo=datetime.timezone.utc).timestamp()) < 3

    # a zone change without a time keeps the instant: the wall clock moves
    assert iot(dev, "time", "set_timezone", {"index": 41}) == {"err_code": 0}
    assert dev.wall_clock().hour == 10  # Amsterdam, UTC+2 in July
    assert iot(dev, "time", "set_time", {**new, "hour": 23}) == {"err_code": 0}
    assert dev.wall_clock().hour == 23 and dev.tz_index == 41
    assert dev.device_now().utcoffset() == datetime.timedelta(hours=2)

    # EST is UTC-5 all year; an index with no zone here renders as UTC
    dev.tz_index = 18
    assert dev.device_now().utcoffset() == datetime.timedelta(hours=-5)
    dev.tz_index = 77
    assert dev.device_now().utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("method, params", [
    ("set_time", {"year": 2024, "month": 13, "mday": 1, "hour": 0, "min": 0, "sec": 0}),
    ("set_time", {"year": 2024, "month": 2, "mday": 30, "hour": 0, "min": 0, "sec": 0}),
    ("set_time", {"year": 2024, "month": 2, "mday": 1, "hour": 24, "min": 0, "sec": 0}),
    ("set_time", {"year": 2024, "month": 2, "mday": 1, "hour": 1, "min": 0}),
    ("set_time", {"year": "2024", "month": 2, "mday": 1, "hour": 1, "min": 0, "sec": 0}),
    ("set_timezone", {"index": 110}),
    ("set_timezone", {"index": -1}),
    ("set_timezone", {}),
    ("set_timezone", {"index": 39, "year": 2024, "month": 1}),
    ("set_timezone", {"index": 39, "year": 2024, "month": 13, "mday": 1, "hour": 0, "min": 0, "sec": 0}),
])
def test_iot_bad_time_values_change_nothing(method, params):
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    dev.clock_skew = 120.0
    assert iot(dev, "time", method, params)["err_code"] == -3
    assert dev.clock_skew == 120.0 and dev.tz_index == 38


def test_iot_set_clock_helper():
    dev = IotDevice.from_fixture("LB100(US)_1.0_1.8.11")
    dev.tz_index = 90  # Asia/Tokyo, UTC+9
    dev.set_clock(datetime.datetime(2025, 3, 4, 5, 6, 7))  # naive: the device's wall time
    t = iot(dev, BULB_TIME, "get_time")
    assert (t["year"], t["month"], t["mday"], t["hour"], t["min"]) == (2025, 3, 4, 5, 6)
    dev.set_clock(datetime.datetime(2025, 3, 4, 0, 0, 0, tzinfo=datetime.timezone.utc))
    assert dev.wall_clock().hour == 9
    assert dev.device_now().tzinfo == zoneinfo.ZoneInfo("Asia/Tokyo")


# ====================================================================== SMART: schedules

def test_smart_p110uk_rules_read_back_as_recorded():
    dev = SmartDevice.from_fixture(P110_UK)
    recorded = fixture("smart/P110(UK)_1.0_1.3.0.json")
    assert smart(dev, "get_countdown_rules", {"start_index": 0}) == {"error_code": 0, "result": recorded["get_countdown_rules"]}
    assert smart(dev, "get_schedule_rules", {"start_index": 0}) == {"error_code": 0, "result": recorded["get_schedule_rules"]}
    assert dev.rules("countdown") == recorded["get_countdown_rules"]["rule_list"]
    assert dev.rules("schedule") == recorded["get_schedule_rules"]["rule_list"]


def test_smart_ep40m_sunset_rule_reads_back_as_recorded():
    dev = SmartDevice.from_fixture(EP40M)
    recorded = fixture("smart/EP40M(US)_1.0_1.1.0.json")["child_devices"]
    answers = [smart(dev, "get_schedule_rules", {"start_index": 0}, child=c)["result"] for c in dev.child_ids()]
    assert sorted(answers, key=lambda a: a["sum"]) == sorted(
        (c["get_schedule_rules"] for c in recorded.values()), key=lambda a: a["sum"])
    sunset = next(a for a in answers if a["sum"])["rule_list"][0]
    assert (sunset["s_type"], sunset["time_offset"], sunset["s_min"]) == ("sunset", -15, 1081)


def test_smart_schedule_add_list_edit_remove():
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    empty = smart(dev, "get_schedule_rules", {"start_index": 0})["result"]
    assert empty == {"enable": False, "rule_list": [], "schedule_rule_max_count": 32, "start_index": 0, "sum": 0}
    assert smart(dev, "add_schedule_rule", SMART_RULE) == {"error_code": 0, "result": {"id": "S1"}}
    sunrise = {**SMART_RULE, "s_type": "sunrise", "time_offset": 20, "desired_states": {"on": False}, "week_day": 62}
    assert smart(dev, "add_schedule_rule", sunrise) == {"error_code": 0, "result": {"id": "S2"}}
    got = smart(dev, "get_schedule_rules", {"start_index": 0})["result"]
    assert got["enable"] is True and got["sum"] == 2
    assert got["rule_list"] == [{**SMART_RULE, "id": "S1"}, {**sunrise, "id": "S2"}]

    assert smart(dev, "edit_schedule_rule", {**SMART_RULE, "id": "S1", "s_min": 1200, "enable": False}) == {"error_code": 0}
    assert dev.rules("schedule")[0] == {**SMART_RULE, "id": "S1", "s_min": 1200, "enable": False}
    assert smart(dev, "edit_schedule_rule", {"id": "S2", "mode": "once"}) == {"error_code": 0}  # partial
    assert dev.rules("schedule")[1] == {**sunrise, "id": "S2", "mode": "once"}

    assert smart(dev, "remove_schedule_rules", {"rule_list": [{"id": "S1"}]}) == {"error_code": 0}
    assert [r["id"] for r in dev.rules("schedule")] == ["S2"]
    assert smart(dev, "add_schedule_rule", SMART_RULE)["result"] == {"id": "S3"}
    assert smart(dev, "remove_schedule_rules", {"remove_all": True}) == {"error_code": 0}
    assert smart(dev, "get_schedule_rules", {"start_index": 0})["result"] == empty


def test_smart_schedule_pages_and_limit():
    dev = SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0")  # schedule_rule_max_count 20
    for n in range(1, 21):
        assert smart(dev, "add_schedule_rule", {**SMART_RULE, "s_min": n})["result"] == {"id": f"S{n}"}
    before = dev.rules("schedule")
    assert smart(dev, "add_schedule_rule", SMART_RULE) == {"error_code": -1802}
    assert dev.rules("schedule") == before
    page0 = smart(dev, "get_schedule_rules", {"start_index": 0})["result"]
    page1 = smart(dev, "get_schedule_rules", {"start_index": 10})["result"]
    page2 = smart(dev, "get_schedule_rules", {"start_index": 20})["result"]
    assert [len(p["rule_list"]) for p in (page0, page1, page2)] == [10, 10, 0]
    assert [p["sum"] for p in (page0, page1, page2)] == [20, 20, 20]
    assert page1["start_index"] == 10 and page1["rule_list"][0]["id"] == "S11"
    assert page0["schedule_rule_max_count"] == 20
    assert smart(dev, "get_schedule_rules", {"start_index": -1}) == {"error_code": -1008}


@pytest.mark.parametrize("bad", [
    {"s_min": 1440}, {"s_min": -1}, {"week_day": 128}, {"week_day": -1}, {"s_type": "noon"},
    {"desired_states": {"on": 1}}, {"desired_states": {}}, {"desired_states": {"on": True, "brightness": 0}},
    {"mode": "weekly"}, {"enable": 1}, {"time_offset": "x"}, {"e_type": "dusk"}, {"month": 13},
])
def test_smart_schedule_validation_changes_nothing(bad):
    dev = SmartDevice.from_fixture(P110_UK)
    before = dev.rules("schedule")
    assert smart(dev, "add_schedule_rule", {**SMART_RULE, **bad}) == {"error_code": -1008}
    assert smart(dev, "edit_schedule_rule", {**before[0], **bad}) == {"error_code": -1008}
    assert dev.rules("schedule") == before


@pytest.mark.parametrize("missing", ["s_min", "s_type", "week_day", "desired_states", "enable", "mode"])
def test_smart_schedule_rule_needs_its_fields(missing):
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    assert smart(dev, "add_schedule_rule", {k: v for k, v in SMART_RULE.items() if k != missing}) == {"error_code": -1008}
    assert dev.rules("schedule") == []


def test_smart_schedule_unknown_ids():
    dev = SmartDevice.from_fixture(P110_UK)
    before = dev.rules("schedule")
    assert smart(dev, "edit_schedule_rule", {**SMART_RULE, "id": "S9"}) == {"error_code": -1008}
    assert smart(dev, "remove_schedule_rules", {"rule_list": [{"id": "S1"}, {"id": "S9"}]}) == {"error_code": -1008}
    assert smart(dev, "remove_schedule_rules", {}) == {"error_code": -1008}
    assert dev.rules("schedule") == before


@pytest.mark.parametrize("name", ["P300(EU)_1.0_1.0.15", "P304M(UK)_1.0_1.0.3"])
def test_smart_strip_rules_per_outlet(name):
    dev = SmartDevice.from_fixture(name)
    ids = dev.child_ids()
    # the parent has the clock only
    for method in ("get_countdown_rules", "get_schedule_rules", "add_schedule_rule", "add_countdown_rule"):
        assert smart(dev, method, {"start_index": 0}) == {"error_code": -1002}
    assert smart(dev, "get_device_time")["error_code"] == 0
    assert smart(dev, "get_device_time", child=ids[0]) == {"error_code": -1002}

    assert smart(dev, "add_schedule_rule", SMART_RULE, child=ids[0])["result"] == {"id": "S1"}
    assert smart(dev, "add_schedule_rule", {**SMART_RULE, "s_min": 5}, child=ids[1])["result"] == {"id": "S1"}
    assert smart(dev, "get_schedule_rules", {"start_index": 0}, child=ids[0])["result"]["rule_list"] == [{**SMART_RULE, "id": "S1"}]
    assert dev.rules("schedule", ids[1]) == [{**SMART_RULE, "s_min": 5, "id": "S1"}]
    assert dev.rules("schedule", ids[2]) == []
    assert smart(dev, "remove_schedule_rules", {"remove_all": True}, child=ids[0]) == {"error_code": 0}
    assert dev.rules("schedule", ids[0]) == [] and len(dev.rules("schedule", ids[1])) == 1

    on = {"delay": 120, "desired_states": {"on": True}, "enable": True}
    assert smart(dev, "add_countdown_rule", on, child=ids[2])["result"] == {"id": "C1"}
    assert smart(dev, "add_countdown_rule", on, child=ids[1])["result"] == {"id": "C1"}  # its own limit
    assert smart(dev, "add_countdown_rule", on, child=ids[2]) == {"error_code": -1902}
    assert dev.rules("countdown", ids[0]) == []
    for cid in ids:
        dev.set_on(False, cid)
    dev.advance_timers(120)
    assert [dev.is_on(c) for c in ids[:3]] == [False, True, True]
    # multipleRequest inside control_child works too
    inner = {"method": "multipleRequest", "params": {"requests": [
        {"method": "get_countdown_rules", "params": {"start_index": 0}},
        {"method": "remove_countdown_rules", "params": {"remove_all": True}},
        {"method": "get_countdown_rules", "params": {"start_index": 0}}]}}
    out = dev.handle({"method": "control_child", "params": {"device_id": ids[2], "requestData": inner}})
    responses = out["result"]["responseData"]["result"]["responses"]
    assert responses[0]["result"]["rule_list"][0]["enable"] is False
    assert responses[2]["result"]["rule_list"] == []


# ====================================================================== SMART: countdowns

def test_smart_countdown_add_edit_remove():
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    rule = {"delay": 300, "desired_states": {"on": True}, "enable": True}
    assert smart(dev, "add_countdown_rule", rule) == {"error_code": 0, "result": {"id": "C1"}}
    got = smart(dev, "get_countdown_rules", {"start_index": 0})["result"]
    assert got["countdown_rule_max_count"] == 1 and got["enable"] is True
    (listed,) = got["rule_list"]
    assert {k: v for k, v in listed.items() if k != "remain"} == {**rule, "id": "C1"}
    assert 295 <= listed["remain"] <= 300
    assert smart(dev, "add_countdown_rule", {**rule, "delay": 5}) == {"error_code": -1902}
    assert dev.rules("countdown")[0]["delay"] == 300

    assert smart(dev, "edit_countdown_rule", {"id": "C1", "delay": 60, "desired_states": {"on": False}, "enable": True}) == {"error_code": 0}
    assert dev.rules("countdown")[0]["desired_states"] == {"on": False} and dev.rules("countdown")[0]["remain"] <= 60
    assert smart(dev, "edit_countdown_rule", {"id": "C2", "enable": False}) == {"error_code": -1008}
    assert smart(dev, "edit_countdown_rule", {"id": "C1", "enable": False}) == {"error_code": 0}
    assert dev.rules("countdown")[0]["remain"] == 0
    assert smart(dev, "get_countdown_rules")["result"]["enable"] is False
    # nothing pending: a new rule replaces the listed one
    assert smart(dev, "add_countdown_rule", {**rule, "delay": 10})["result"] == {"id": "C1"}
    assert [r["delay"] for r in dev.rules("countdown")] == [10]
    assert smart(dev, "remove_countdown_rules", {"remove_all": True}) == {"error_code": 0}
    assert dev.rules("countdown") == []


@pytest.mark.parametrize("bad", [{"delay": 0}, {"delay": 86401}, {"delay": "60"}, {"delay": True},
                                 {"desired_states": {"on": "yes"}}, {"desired_states": None}, {"enable": 1},
                                 {"desired_states": {"on": True, "brightness": 101}}])
def test_smart_countdown_validation_changes_nothing(bad):
    dev = SmartDevice.from_fixture(P110_UK)
    before = dev.rules("countdown")
    rule = {"delay": 60, "desired_states": {"on": True}, "enable": True}
    assert smart(dev, "add_countdown_rule", {**rule, **bad}) == {"error_code": -1008}
    assert smart(dev, "edit_countdown_rule", {**rule, **bad, "id": "C1"}) == {"error_code": -1008}
    assert dev.rules("countdown") == before
    assert smart(dev, "add_countdown_rule", {**rule, "delay": 86400})["error_code"] == 0


def test_smart_countdown_fires_after_scaled_time_and_stays_listed():
    dev = SmartDevice.from_fixture(P110_UK)
    dev.set_on(True)
    dev.time_scale = 10
    assert smart(dev, "add_countdown_rule", {"delay": 5, "desired_states": {"on": False}, "enable": True})["error_code"] == 0
    assert dev.is_on()
    assert wait_for(lambda: not smart(dev, "get_device_info")["result"]["device_on"])
    assert smart(dev, "get_countdown_rules", {"start_index": 0})["result"] == {
        "countdown_rule_max_count": 1, "enable": False,
        "rule_list": [{"delay": 5, "desired_states": {"on": False}, "enable": False, "id": "C1", "remain": 0}]}


def test_smart_countdown_remain_decreases_and_scale_changes_keep_time():
    dev = SmartDevice.from_fixture("L530E(EU)_3.0_1.1.6")
    dev.set_on(False)
    dev.time_scale = 100
    smart(dev, "add_countdown_rule", {"delay": 3600, "desired_states": {"on": True}, "enable": True})
    time.sleep(0.2)
    left = dev.rules("countdown")[0]["remain"]
    assert left < 3600 and not dev.is_on()
    dev.time_scale = 1
    time.sleep(0.05)
    assert left - 2 <= dev.rules("countdown")[0]["remain"] <= left
    dev.time_scale = 60000
    assert wait_for(lambda: dev.is_on() is True)


# ====================================================================== SMART: clock, missing methods

def test_smart_device_time_get_set_and_skew():
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    got = smart(dev, "get_device_time")["result"]
    assert (got["region"], got["time_diff"]) == ("Europe/Berlin", 60)
    assert abs(got["timestamp"] - time.time()) < 3
    dev.clock_skew = 300
    assert abs(smart(dev, "get_device_time")["result"]["timestamp"] - time.time() - 300) < 3
    assert smart(dev, "set_device_time", {"timestamp": 1_700_000_000, "time_diff": -300, "region": "America/New_York"}) == {"error_code": 0}
    got = smart(dev, "get_device_time")["result"]
    assert (got["region"], got["time_diff"]) == ("America/New_York", -300)
    assert 1_700_000_000 <= got["timestamp"] <= 1_700_000_003
    assert dev.device_now().utcoffset() == datetime.timedelta(hours=-5)
    assert smart(dev, "set_device_time", {"timestamp": 1_700_000_000, "time_diff": 0}) == {"error_code": 0}
    assert smart(dev, "get_device_time")["result"]["region"] == "America/New_York"  # region optional
    dev.set_clock(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
    assert abs(smart(dev, "get_device_time")["result"]["timestamp"] - 1893456000) < 3


@pytest.mark.parametrize("params", [{}, {"timestamp": "1"}, {"timestamp": -1, "time_diff": 0},
                                    {"timestamp": 1, "time_diff": 900}, {"timestamp": 1},
                                    {"timestamp": 1, "time_diff": 0, "region": 5}])
def test_smart_bad_device_time_changes_nothing(params):
    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    assert smart(dev, "set_device_time", params) == {"error_code": -1008}
    assert (dev.clock_skew, dev.time_diff, dev.region) == (0.0, 60, "Europe/Berlin")


def test_smart_methods_exist_only_where_recorded_and_can_be_removed():
    dev = SmartDevice.from_fixture("P300(EU)_1.0_1.0.15")
    c0, c1 = dev.child_ids()[:2]
    dev.remove_method("get_countdown_rules", child_id=c0)
    for method in ("get_countdown_rules", "add_countdown_rule", "edit_countdown_rule", "remove_countdown_rules"):
        assert smart(dev, method, child=c0) == {"error_code": -1002}
    assert smart(dev, "get_countdown_rules", child=c1)["error_code"] == 0
    dev.remove_method("get_schedule_rules")  # the device and every outlet
    assert all(smart(dev, "add_schedule_rule", SMART_RULE, child=c) == {"error_code": -1002} for c in dev.child_ids())
    dev.remove_method("get_device_time")
    assert smart(dev, "get_device_time") == {"error_code": -1002}
    assert smart(dev, "set_device_time", {"timestamp": 1, "time_diff": 0}) == {"error_code": -1002}
    with pytest.raises(ValueError):
        dev.rules("countdown")  # a strip parent has none

    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")
    plug.remove_method("get_countdown_rules")
    assert smart(plug, "add_countdown_rule", {"delay": 5, "desired_states": {"on": True}, "enable": True}) == {"error_code": -1002}
    assert smart(plug, "get_schedule_rules")["error_code"] == 0


def test_smart_device_without_recorded_rules_answers_unknown_method():
    data = copy.deepcopy(fixture("smart/P110(EU)_1.0_1.2.3.json"))
    for key in ("get_countdown_rules", "get_schedule_rules", "get_device_time"):
        del data[key]
    dev = SmartDevice(data)
    for method in ("get_countdown_rules", "add_countdown_rule", "get_schedule_rules", "add_schedule_rule",
                   "remove_schedule_rules", "get_device_time", "set_device_time"):
        assert smart(dev, method) == {"error_code": -1002}


# ====================================================================== both: threads

def test_concurrent_rule_changes_are_all_kept():
    iot_dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4")
    smart_dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3")

    def add(n: int) -> None:
        iot(iot_dev, SCHED, "add_rule", {**IOT_RULE, "smin": n})
        smart(smart_dev, "add_schedule_rule", {**SMART_RULE, "s_min": n})

    threads = [threading.Thread(target=add, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["smin"] for r in iot_dev.rules("schedule")) == list(range(16))
    assert len({r["id"] for r in iot_dev.rules("schedule")}) == 16
    assert sorted(r["s_min"] for r in smart_dev.rules("schedule")) == list(range(16))
    assert len({r["id"] for r in smart_dev.rules("schedule")}) == 16
