"""Energy over time, in-process: the emulated meters' resets and forgetting, the walk back through
what a meter holds, the archive (schema, idempotence, resets and gaps, a broken file), and how
the device's history and the archive's are merged."""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import sqlite3

import pytest

from tests.conftest import ROOT, all_at_once
from tests.doubles.devices.iot import IotDevice
from tests.doubles.devices.smart import SmartDevice
from tests.test_capabilities import smart_strip_target, target_of
from tpcloud import errors
from tpcloud.archive import SCHEMA_VERSION, Archive
from tpcloud.capabilities import energy
from tpcloud.capabilities.energy import ARCHIVE, DAILY, DEVICE, MONTHLY, Held, History
from tpcloud.devices import Device, Outlet, Target

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




def smart_hours(plug: SmartDevice, first: datetime.date, last: datetime.date, child_id: str | None = None) -> dict:
    start = int(datetime.datetime(first.year, first.month, first.day).timestamp())
    end = int(datetime.datetime(last.year, last.month, last.day, 23, 59, 59).timestamp())
    request = {"method": "get_energy_data", "params": {"start_timestamp": start, "end_timestamp": end, "interval": 60}}
    if child_id is not None:
        request = {"method": "control_child", "params": {"device_id": child_id, "requestData": request}}
        return plug.handle(request)["result"]["responseData"]
    return plug.handle(request)


def test_a_smart_meter_answers_hours_of_at_most_eight_days():
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json")
    midnight = datetime.datetime(TODAY.year, TODAY.month, TODAY.day)
    plug.record_hourly(midnight + datetime.timedelta(hours=7), 40)
    plug.record_hourly(midnight - datetime.timedelta(hours=1), 15)  # 23:00 yesterday
    data = smart_hours(plug, TODAY - 7 * DAY, TODAY)["result"]["data"]
    assert len(data) == 8 * 24 and data[7 * 24 + 7] == 40 and data[7 * 24 - 1] == 15 and sum(data) == 55
    assert smart_data(plug, quarter_start(TODAY), 1440)[(TODAY - quarter_start(TODAY)).days] == 40  # days agree
    assert smart_hours(plug, TODAY - 8 * DAY, TODAY)["error_code"] == -1008  # nine days
    assert smart_hours(plug, TODAY, TODAY - DAY)["error_code"] == -1008
    plug.keep_only(hour_days=1)
    assert sum(smart_hours(plug, TODAY - DAY, TODAY)["result"]["data"]) == 40
    plug.keep_only(days=1)  # hours go with days unless told otherwise
    assert sum(smart_hours(plug, TODAY - DAY, TODAY)["result"]["data"]) == 40
    plug.keep_only()
    plug.reset_meter()
    assert set(smart_hours(plug, TODAY, TODAY)["result"]["data"]) == {0}


def test_a_smart_strip_outlet_answers_its_own_hours():
    strip = SmartDevice.from_fixture("P304M(UK)_1.0_1.0.3.json")
    first, second = strip.child_ids()[:2]
    strip.record_hourly(datetime.datetime(TODAY.year, TODAY.month, TODAY.day, 3), 9, child_id=second)
    assert set(smart_hours(strip, TODAY, TODAY, first)["result"]["data"]) == {0}
    assert smart_hours(strip, TODAY, TODAY, second)["result"]["data"][3] == 9


# -- the walk back through what a meter holds ---------------------------------------------------

W = datetime.date(2025, 6, 14)


def walk(fake, target=None) -> Held:
    async def send(request):
        return fake.handle(request)

    return asyncio.run(energy.holdings(W)(target or target_of(fake), send))


def test_an_iot_walk_goes_back_month_by_month_and_year_by_year_until_one_has_nothing():
    plug = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json")
    for day, wh in [("2025-06-10", 100), ("2025-05-01", 200), ("2025-03-31", 300), ("2024-12-01", 50)]:
        plug.record_energy(datetime.date.fromisoformat(day), wh)
    held = walk(plug)
    assert held.days == (("2025-05-01", 0.2), ("2025-06-10", 0.1)) and held.days_from == "2025-04-01"  # April had nothing
    assert held.months == (("2024-12", 0.05), ("2025-03", 0.3), ("2025-05", 0.2), ("2025-06", 0.1))
    assert held.months_from == "2023-01"
    asked = [next(iter(r["emeter"].items())) for r in plug.requests]
    assert asked == [("get_daystat", {"year": 2025, "month": m}) for m in (6, 5, 4)] + [
        ("get_monthstat", {"year": y}) for y in (2025, 2024, 2023)]


def test_an_empty_meter_is_asked_about_this_period_and_the_one_before():
    held = walk(IotDevice.from_fixture("HS110(EU)_1.0_1.2.5.json"))
    assert held == Held((), (), "2025-05-01", "2024-01")


def test_a_smart_walk_goes_back_quarter_by_quarter_and_a_zero_is_no_figure():
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json")
    for day, wh in [("2025-06-10", 100), ("2025-06-11", 0), ("2025-04-02", 50), ("2025-01-15", 30), ("2024-08-01", 70)]:
        plug.record_energy(datetime.date.fromisoformat(day), wh)
    held = walk(plug)
    assert held.days == (("2025-01-15", 0.03), ("2025-04-02", 0.05), ("2025-06-10", 0.1))
    assert held.days_from == "2024-10-01"  # the last quarter of 2024 was all zeros: August is not reached
    assert held.months == (("2024-08", 0.07), ("2025-01", 0.03), ("2025-04", 0.05), ("2025-06", 0.1))
    assert held.months_from == "2023-01"
    starts = [datetime.date.fromtimestamp(r["params"]["start_timestamp"]).isoformat() for r in plug.requests
              if r["params"]["interval"] != 60]
    assert starts == ["2025-04-01", "2025-01-01", "2024-10-01", "2025-01-01", "2024-01-01", "2023-01-01"]
    assert held.hours == () and held.hours_from == "2025-05-30T00"  # days recorded alone have no hours


def test_a_smart_strip_outlet_is_walked_through_control_child():
    strip = SmartDevice.from_fixture("P304M(UK)_1.0_1.0.3.json")
    iron = strip.child_ids()[1]
    strip.record_energy(W, 750, child_id=iron)
    held = walk(strip, smart_strip_target(strip, 1))
    assert held.days == ((W.isoformat(), 0.75),) and held.months == (("2025-06", 0.75),)
    assert {r["params"]["device_id"] for r in strip.requests} == {iron}


def test_a_smart_walk_goes_back_eight_days_at_a_time_until_eight_hold_no_hour():
    plug = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3.json")
    for when, wh in [("2025-06-14T08", 30), ("2025-06-14T09", 0), ("2025-06-07T00", 5), ("2025-06-03T23", 12),
                     ("2025-05-20T10", 99)]:  # 05-22..05-29 hold nothing: 05-20 is not reached
        plug.record_hourly(datetime.datetime.fromisoformat(when + ":00"), wh)
    held = walk(plug)
    assert held.hours == (("2025-06-03T23", 0.012), ("2025-06-07T00", 0.005), ("2025-06-14T08", 0.03))
    assert held.hours_from == "2025-05-22T00"
    hourly = [r["params"] for r in plug.requests if r["params"]["interval"] == 60]
    assert [datetime.datetime.fromtimestamp(p["start_timestamp"]).isoformat() for p in hourly] == [
        "2025-06-07T00:00:00", "2025-05-30T00:00:00", "2025-05-22T00:00:00"]
    assert [datetime.datetime.fromtimestamp(p["end_timestamp"]).isoformat() for p in hourly] == [
        "2025-06-14T23:59:59", "2025-06-06T23:59:59", "2025-05-29T23:59:59"]
    assert ("2025-06-14", 0.03) in held.days  # the hours are in the days too


def test_an_iot_walk_asks_for_no_hours_and_an_iot_meter_keeps_none():
    plug = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json")
    held = walk(plug)
    assert held.hours == () and held.hours_from is None

    async def send(request):
        return plug.handle(request)

    with pytest.raises(errors.NotSupported, match="keeps no hourly energy figures") as failure:
        asyncio.run(energy.history(energy.HOURLY, W.year, W.month, W)(target_of(plug), send))
    assert failure.value.exit_code == 5


def test_a_meter_without_history_lacks_it():
    with pytest.raises(errors.NotSupported, match="has no energy"):
        walk(IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json"))
    with pytest.raises(errors.NotSupported, match="has no energy history"):
        walk(SmartDevice.from_fixture("P100(US)_1.0.0_1.4.0.json"))


# -- merging the device's history with the archive's --------------------------------------------


def test_the_archive_fills_what_the_device_no_longer_holds_or_now_holds_less_of():
    device = History(DAILY, 2025, 6, (("2025-06-02", 0.5), ("2025-06-03", 0.0), ("2025-06-04", 0.2), ("2025-06-05", 0.9)))
    merged = device.merged({"2025-06-01": 1.0, "2025-06-03": 0.4, "2025-06-04": 0.7, "2025-06-05": 0.8})
    assert merged.entries == (("2025-06-01", 1.0), ("2025-06-02", 0.5), ("2025-06-03", 0.4), ("2025-06-04", 0.7),
                              ("2025-06-05", 0.9))
    assert merged.sources == (ARCHIVE, DEVICE, ARCHIVE, ARCHIVE, DEVICE)
    assert [e["source"] for e in merged.to_dict()["entries"]] == ["archive", "device", "archive", "archive", "device"]
    assert device.merged({}).sources == (DEVICE,) * 4 and device.to_dict()["entries"][0]["source"] == "device"


def test_a_strip_sum_with_an_archived_figure_in_it_is_the_archives():
    one = History(MONTHLY, 2025, None, (("2025-01", 1.0), ("2025-02", 2.0)), (ARCHIVE, DEVICE))
    other = History(MONTHLY, 2025, None, (("2025-02", 0.5),))
    whole = History.of_outlets([one, other])
    assert whole.entries == (("2025-01", 1.0), ("2025-02", 2.5)) and whole.sources == (ARCHIVE, DEVICE)
    assert History.of_outlets([other, other]).sources == ()


# -- the archive ---------------------------------------------------------------------------------


def meter(outlet: str | None = None) -> Target:
    outlets = (Outlet("D1" + "00", "Fridge"),) if outlet else ()
    device = Device("D1", "Power Bar" if outlet else "Kettle", "HS300", "IOT.SMARTPLUGSWITCH", True, "", outlets=outlets)
    return Target(device, outlets[0] if outlet else None)


def held(*days: tuple[str, float], since: str = "2025-06-01", months: tuple = (("2025-06", 2.0),)) -> Held:
    return Held(tuple(days), months, since, "2024-01")


def keep(path, what: Held, target=None, now: float = 1_750_000_000.0):
    with Archive.for_writing(path) as archive, archive.writing():
        return archive.keep(target or meter(), what, now)


def dump(path) -> dict:
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in ("meters", "days", "months", "events")}
    finally:
        db.close()


def test_a_new_archive_has_a_versioned_schema_and_a_second_run_adds_nothing(tmp_path):
    path = tmp_path / "new" / "energy.sqlite"
    first = keep(path, held(("2025-06-01", 1.0), ("2025-06-02", 0.5)))
    assert first.to_dict() == {"days": 2, "months": 1, "hours": 0, "added": 3, "updated": 0, "resets": 0, "gaps": 0}
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    db.close()
    before = dump(path)
    assert before["days"] == [("D1", "", "2025-06-01", 1.0, "2025-06-15T15:06:40Z"), ("D1", "", "2025-06-02", 0.5, "2025-06-15T15:06:40Z")]
    assert before["meters"] == [("D1", "", "Kettle")]
    again = keep(path, held(("2025-06-01", 1.0), ("2025-06-02", 0.5)), now=1_760_000_000.0)
    assert (again.added, again.updated, again.resets, again.gaps) == (0, 0, 0, 0)
    assert dump(path) == before


def test_hours_are_kept_as_days_are_only_raised_and_their_resets_and_gaps_noted(tmp_path):
    path = tmp_path / "energy.sqlite"
    hours = (("2025-06-01T07", 0.2), ("2025-06-01T08", 0.1))
    first = keep(path, Held((), (), "2025-06-01", "2025-01", hours, "2025-05-25T00"))
    assert (first.hours, first.added) == (2, 2)
    stored = dump(path)
    assert keep(path, Held((), (), "2025-06-01", "2025-01", hours, "2025-05-25T00")).added == 0 and dump(path) == stored
    later = keep(path, Held((), (), "2025-06-01", "2025-01", (("2025-06-01T08", 0.05), ("2025-06-01T09", 0.3)),
                            "2025-05-25T00"), now=1_760_000_000.0)
    assert (later.added, later.resets, later.gaps) == (1, 1, 1)
    db = sqlite3.connect(path)
    assert db.execute("SELECT hour, kwh FROM hours ORDER BY hour").fetchall() == [
        ("2025-06-01T07", 0.2), ("2025-06-01T08", 0.1), ("2025-06-01T09", 0.3)]
    assert db.execute("SELECT period, date, kind FROM events ORDER BY date").fetchall() == [
        ("hour", "2025-06-01T07", "gap"), ("hour", "2025-06-01T08", "reset")]
    db.close()
    with Archive.for_reading(path) as archive:
        found = archive.history([meter()], energy.HOURLY, "2025-06-01", "2025-06-01")
    assert found.entries == (("2025-06-01T07", 0.2), ("2025-06-01T08", 0.1), ("2025-06-01T09", 0.3))
    # a meter that keeps no hours (hours_from None) leaves the archived ones alone: no gaps
    assert keep(path, Held((), (), "2025-06-01", "2025-01")).gaps == 0


V1_SCHEMA = [
    "CREATE TABLE meters (device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, name TEXT NOT NULL, "
    "PRIMARY KEY (device_id, outlet_id))",
    "CREATE TABLE days (device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, date TEXT NOT NULL, kwh REAL NOT NULL, "
    "recorded_at TEXT NOT NULL, PRIMARY KEY (device_id, outlet_id, date)) WITHOUT ROWID",
    "CREATE TABLE months (device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, month TEXT NOT NULL, kwh REAL NOT NULL, "
    "recorded_at TEXT NOT NULL, PRIMARY KEY (device_id, outlet_id, month)) WITHOUT ROWID",
    "CREATE TABLE events (device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, "
    "period TEXT NOT NULL CHECK (period IN ('day', 'month')), date TEXT NOT NULL, "
    "kind TEXT NOT NULL CHECK (kind IN ('reset', 'gap')), archived_kwh REAL NOT NULL, device_kwh REAL, "
    "seen_at TEXT NOT NULL, PRIMARY KEY (device_id, outlet_id, period, date, kind)) WITHOUT ROWID",
    "INSERT INTO meters VALUES ('D1', '', 'Kettle')",
    "INSERT INTO days VALUES ('D1', '', '2025-05-20', 0.3, '2025-05-21T00:00:00Z')",
    "INSERT INTO months VALUES ('D1', '', '2025-05', 0.3, '2025-05-21T00:00:00Z')",
    "INSERT INTO events VALUES ('D1', '', 'day', '2025-05-19', 'gap', 0.1, NULL, '2025-05-21T00:00:00Z')",
    "PRAGMA user_version = 1",
]


def test_a_version_1_archive_is_read_as_it_is_and_migrated_when_written(tmp_path):
    path = tmp_path / "energy.sqlite"
    db = sqlite3.connect(path)
    for statement in V1_SCHEMA:
        db.execute(statement)
    db.commit()
    db.close()
    before = dump(path)
    with Archive.for_reading(path) as archive:  # read-only: no hours, nothing changed
        assert archive.figures(meter(), energy.HOURLY, "", "9999") == {}
        assert archive.figures(meter(), DAILY, "", "9999") == {"2025-05-20": 0.3}
        assert archive.summary()["hours"] == 0  # what doctor shows: no hours table yet
    assert dump(path) == before
    kept = keep(path, Held((("2025-05-20", 0.3),), (("2025-05", 0.3),), "2025-05-01", "2025-01", (("2025-05-20T10", 0.3),),
                           "2025-05-13T00"))
    assert (kept.added, kept.hours) == (1, 1)
    after = dump(path)
    assert {t: after[t] for t in ("meters", "days", "months", "events")} == before  # its days, months and events kept
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("SELECT hour, kwh FROM hours").fetchall() == [("2025-05-20T10", 0.3)]
    db.execute("INSERT INTO events VALUES ('D1', '', 'hour', '2025-05-20T09', 'gap', 0.1, NULL, 'x')")  # takes 'hour'
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'events_v1'").fetchall() == []
    db.close()
    with Archive.for_reading(path) as archive:
        assert archive.summary()["hours"] == 1


def test_a_figure_is_only_ever_raised(tmp_path):
    path = tmp_path / "energy.sqlite"
    keep(path, held(("2025-06-02", 0.5)))
    assert keep(path, held(("2025-06-02", 0.75))).updated == 1
    assert dump(path)["days"][0][3] == 0.75


def test_a_lower_figure_is_a_reset_noted_once_and_the_archived_one_stays(tmp_path):
    path = tmp_path / "energy.sqlite"
    keep(path, held(("2025-06-01", 1.0), ("2025-06-02", 0.5)))
    after_reset = held(("2025-06-01", 1.0), ("2025-06-02", 0.0), months=(("2025-06", 0.1),))
    kept = keep(path, after_reset, now=1_760_000_000.0)
    assert (kept.resets, kept.added, kept.updated) == (2, 0, 0)
    stored = dump(path)
    assert [row[3] for row in stored["days"]] == [1.0, 0.5] and stored["months"][0][3] == 2.0
    assert stored["events"] == [
        ("D1", "", "day", "2025-06-02", "reset", 0.5, 0.0, "2025-10-09T08:53:20Z"),
        ("D1", "", "month", "2025-06", "reset", 2.0, 0.1, "2025-10-09T08:53:20Z"),
    ]
    assert keep(path, after_reset).resets == 0 and dump(path) == stored


def test_a_day_the_meter_no_longer_holds_is_a_gap_kept_as_archived(tmp_path):
    path = tmp_path / "energy.sqlite"
    keep(path, held(("2025-05-20", 0.3), ("2025-06-01", 1.0), ("2025-06-02", 0.5), since="2025-05-01"))
    forgot = held(("2025-06-02", 0.5))  # asked from June 1st: May is no longer looked at
    assert keep(path, forgot).gaps == 1
    stored = dump(path)
    assert [row[2] for row in stored["days"]] == ["2025-05-20", "2025-06-01", "2025-06-02"]
    assert [(e[2], e[3], e[4], e[5], e[6]) for e in stored["events"]] == [("day", "2025-06-01", "gap", 1.0, None)]
    assert keep(path, forgot).gaps == 0


def test_outlets_are_meters_of_their_own(tmp_path):
    path = tmp_path / "energy.sqlite"
    keep(path, held(("2025-06-01", 1.0)))
    keep(path, held(("2025-06-01", 0.25)), target=meter(outlet="00"))
    with Archive.for_reading(path) as archive:
        assert archive.figures(meter(), DAILY, "2025-06-01", "2025-06-31") == {"2025-06-01": 1.0}
        assert archive.figures(meter(outlet="00"), DAILY, "2025-06-01", "2025-06-31") == {"2025-06-01": 0.25}
        assert archive.figures(meter(), MONTHLY, "2025-01", "2025-12") == {"2025-06": 2.0}
        assert archive.summary() == {"meters": 2, "days": 2, "months": 2, "hours": 0, "events": 0}
        found = archive.history([meter(), meter(outlet="00")], DAILY, None, "2025-06-30")
    assert found.entries == (("2025-06-01", 1.25),) and found.sources == (ARCHIVE,)
    assert found.to_dict()["from"] is None and found.to_dict()["to"] == "2025-06-30"
    assert dump(path)["meters"] == [("D1", "", "Kettle"), ("D1", "D100", "Power Bar/Fridge")]


def test_nothing_is_written_when_the_run_fails(tmp_path):
    path = tmp_path / "energy.sqlite"
    keep(path, held(("2025-06-01", 1.0)))
    before = dump(path)
    with Archive.for_writing(path) as archive, pytest.raises(RuntimeError):
        with archive.writing():
            archive.keep(meter(), held(("2025-06-02", 9.0)), 0)
            raise RuntimeError("a device's answer made no sense")
    assert dump(path) == before


@pytest.mark.parametrize("content, message", [
    (b"these are not the bytes of a database " * 200, "file is not a database"),
    (None, "written by a newer tpcloud (schema 7, this one knows 2)"),
    ("foreign", "an SQLite database, but not a tpcloud energy archive"),
])
def test_a_file_that_is_not_an_archive_is_left_as_it_is(tmp_path, content, message):
    path = tmp_path / "energy.sqlite"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 7" if content is None else "CREATE TABLE photos (name TEXT)")
        db.commit()
        db.close()
    before = path.read_bytes()
    for opening in (Archive.for_writing, Archive.for_reading):
        with pytest.raises(errors.ArchiveError, match=re.escape(message)) as failure:
            opening(path)
        assert failure.value.exit_code == 12
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


def test_no_archive_to_read_and_an_empty_file(tmp_path):
    with pytest.raises(errors.ArchiveError, match="there is no energy archive at"):
        Archive.for_reading(tmp_path / "none.sqlite")
    assert not (tmp_path / "none.sqlite").exists()
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with Archive.for_reading(empty) as archive:
        assert archive.figures(meter(), DAILY, "", "9999") == {} and archive.summary()["days"] == 0
    assert empty.read_bytes() == b""
    assert keep(empty, held(("2025-06-01", 1.0))).added == 2


_STARTING_AT_ONCE = """
import pathlib, sys, time
from tpcloud.archive import Archive
from tpcloud.capabilities.energy import Held
from tpcloud.devices import Device, Target

path, go, n = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
target = Target(Device("D" + n, "Plug " + n, "HS110", "IOT.SMARTPLUGSWITCH", True, ""))
while not go.exists():
    time.sleep(0.002)
time.sleep(int(n) * 0.004)  # staggered: a later one may look while an earlier one makes the schema
with Archive.for_writing(path) as archive, archive.writing():
    archive.keep(target, Held((("2025-06-01", 1.0),), (("2025-06", 1.0),), "2025-06-01", "2025-01"), 0)
"""


def test_runs_that_start_a_new_archive_at_once_all_succeed(tmp_path):
    path, go = tmp_path / "energy.sqlite", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    all_at_once([[_STARTING_AT_ONCE, str(path), str(go), str(n)] for n in range(8)], env, go)
    assert [row[0] for row in dump(path)["meters"]] == [f"D{n}" for n in range(8)]
