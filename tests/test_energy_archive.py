"""Energy over time, in-process: the emulated meters' resets and forgetting, the walk back through
what a meter holds, the archive (schema, idempotence, resets and gaps, a broken file), and how
the device's history and the archive's are merged."""

from __future__ import annotations

import datetime

from tests.doubles.devices.iot import IotDevice
from tests.doubles.devices.smart import SmartDevice

TODAY = datetime.date.today()
DAY = datetime.timedelta(days=1)


# -- the emulators' test hooks, through handle() alone -------------------------------------------


def daystat(plug: IotDevice, day: datetime.date, **context) -> list[tuple[int, int]]:
    request = {"emeter": {"get_daystat": {"year": day.year, "month": day.month}}, **context}
    return [(e["day"], e["energy_wh"]) for e in plug.handle(request)["emeter"]["get_daystat"]["day_list"]]


def monthstat(plug: IotDevice, year: int) -> list[tuple[int, int]]:
    reply = plug.handle({"emeter": {"get_monthstat": {"year": year}}})
    return [(e["month"], e["energy_wh"]) for e in reply["emeter"]["get_monthstat"]["month_list"]]


def test_an_iot_meter_reset_drops_its_history_and_total():
    plug = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json")
    plug.record_energy(TODAY, 300)
    assert daystat(plug, TODAY) == [(TODAY.day, 300)]
    plug.reset_meter()
    assert daystat(plug, TODAY) == [] and monthstat(plug, TODAY.year) == []
    assert plug.handle({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]["total_wh"] == 0
    plug.record_energy(TODAY, 20)
    assert daystat(plug, TODAY) == [(TODAY.day, 20)]


def test_an_iot_strip_outlet_resets_alone():
    strip = IotDevice.from_fixture("HS300(US)_2.0_1.0.12.json")
    for outlet in (0, 1):
        strip.record_energy(TODAY, 100, child_index=outlet)
    strip.reset_meter(child_index=1)
    first, second = ({"context": {"child_ids": [strip.child_ids[i]]}} for i in (0, 1))
    assert daystat(strip, TODAY, **first) == [(TODAY.day, 100)] and daystat(strip, TODAY, **second) == []
    realtime = strip.handle({"emeter": {"get_realtime": {}}, **second})["emeter"]["get_realtime"]
    assert realtime["total_wh"] == 0 and realtime["slot_id"] == 1


def test_an_iot_meter_that_keeps_only_its_last_days_and_months():
    plug = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json")
    old = TODAY - 40 * DAY
    plug.record_energy(old, 500)
    plug.record_energy(TODAY, 100)
    plug.keep_only(days=30, months=1)
    assert (old.day, 500) not in daystat(plug, old)
    assert daystat(plug, TODAY) == [(TODAY.day, 100)]
    assert monthstat(plug, TODAY.year) == [(TODAY.month, 100 + (500 if old.month == TODAY.month else 0))]
    plug.keep_only()
    assert (old.day, 500) in daystat(plug, old)


def smart_data(plug: SmartDevice, start: datetime.date, interval: int, child_id: str | None = None) -> list[int]:
    stamp = int(datetime.datetime(start.year, start.month, start.day).timestamp())
    request = {"method": "get_energy_data", "params": {"start_timestamp": stamp, "end_timestamp": stamp, "interval": interval}}
    if child_id is not None:
        request = {"method": "control_child", "params": {"device_id": child_id, "requestData": request}}
        return plug.handle(request)["result"]["responseData"]["result"]["data"]
    return plug.handle(request)["result"]["data"]


def quarter_start(day: datetime.date) -> datetime.date:
    return datetime.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def test_a_smart_meter_reset_and_forgetting():
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json")
    first = quarter_start(TODAY)
    plug.record_energy(first, 700)
    plug.record_energy(TODAY, 120)
    assert smart_data(plug, first, 1440)[0] == 700 and smart_data(plug, first, 1440)[(TODAY - first).days] == 120
    plug.keep_only(days=1)  # today alone
    days = smart_data(plug, first, 1440)
    assert days[0] == (120 if TODAY == first else 0) and days[(TODAY - first).days] == 120
    assert smart_data(plug, datetime.date(TODAY.year, 1, 1), 43200)[TODAY.month - 1] >= 120  # months kept
    plug.keep_only(months=0)
    assert smart_data(plug, datetime.date(TODAY.year, 1, 1), 43200) == [0] * 12
    plug.keep_only()
    plug.reset_meter()
    usage = plug.handle({"method": "get_energy_usage"})["result"]
    assert (usage["today_energy"], usage["month_energy"]) == (0, 0)  # not the fixture's 46 and 430
    assert smart_data(plug, first, 1440) == [0] * len(days)


def test_a_smart_strip_outlet_resets_alone():
    strip = SmartDevice.from_fixture("P304M(UK)_1.0_1.0.3.json")
    first, second = strip.child_ids()[:2]
    for child in (first, second):
        strip.record_energy(TODAY, 50, child_id=child)
    strip.reset_meter(child_id=second)
    start = quarter_start(TODAY)
    assert smart_data(strip, start, 1440, first)[(TODAY - start).days] == 50
    assert set(smart_data(strip, start, 1440, second)) == {0}
