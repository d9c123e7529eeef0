"""Timers, schedules and clocks below the command line: what people type (durations, times of
day, days), rules read from and written in each dialect's own form (checked against the rules
real devices recorded, in tests/fixtures), schedule files, and the IOT zone table.

The end-to-end proof, against emulators over every route, is tests/test_cli_timekeeping.py.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from tpcloud import zones
from tpcloud.capabilities import schedule
from tpcloud.capabilities.schedule import Rule, iot_form, iot_rule, rule_from, smart_form, smart_rule
from tpcloud.errors import UsageError
from tpcloud.schedulefile import load
from tpcloud.timespec import EVERY_DAY, When, days_text, parse_days, parse_duration, parse_when

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(path: str) -> dict:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


# -- what people type --------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("45m", 2700), ("1h30m", 5400), ("2h", 7200), ("1h0m5s", 3605), ("90", 90), (" 10M ", 600),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "m", "45 m", "1.5h", "-5m", "1d", "h30"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(UsageError) as caught:
        parse_duration(text)
    assert "duration" in caught.value.message


@pytest.mark.parametrize("text, when, shown", [
    ("07:30", When(minute=450), "07:30"),
    ("7:05", When(minute=425), "07:05"),
    ("23:59", When(minute=1439), "23:59"),
    ("sunset", When(sun="sunset"), "sunset"),
    ("sunset-15m", When(sun="sunset", offset=-15), "sunset-15m"),
    ("Sunrise+1h", When(sun="sunrise", offset=60), "sunrise+1h"),
    ("sunrise+1h30m", When(sun="sunrise", offset=90), "sunrise+1h30m"),
])
def test_times_of_day_read_and_shown_back(text, when, shown):
    assert parse_when(text) == when
    assert str(when) == shown
    assert parse_when(shown) == when


@pytest.mark.parametrize("text", ["24:00", "7", "12:60", "noon", "sunset-13h", "sunset-30s", "sunset~5m"])
def test_bad_times_of_day_are_refused(text):
    with pytest.raises(UsageError):
        parse_when(text)


def test_days():
    assert parse_days("daily") == EVERY_DAY
    assert parse_days("weekdays") == frozenset(range(5))
    assert parse_days("Weekends") == frozenset({5, 6})
    assert parse_days("mon,wed, friday") == frozenset({0, 2, 4})
    assert days_text(frozenset({0, 2, 4})) == "mon,wed,fri"
    assert days_text(frozenset(range(5))) == "weekdays"
    for bad in ("", "mon,funday", ","):
        with pytest.raises(UsageError):
            parse_days(bad)


def test_rules_from_what_people_wrote_are_checked():
    rule = rule_from("on", When(minute=420), EVERY_DAY, brightness=40)
    assert str(rule) == "on 40% at 07:00 daily"
    for action, brightness in (("dim", None), ("on", 0), ("on", 101), ("off", 30), ("on", True)):
        with pytest.raises(UsageError):
            rule_from(action, When(minute=420), EVERY_DAY, brightness=brightness)


# -- rules in each dialect's own form ----------------------------------------------------------


def test_iot_rules_recorded_by_a_kp105_are_read():
    recorded = fixture("iot/KP105(UK)_1.0_1.0.5.json")["schedule"]["get_rules"]["rule_list"]
    rules = [iot_rule(raw) for raw in recorded]
    assert [str(r) for r in rules] == ["on at sunset daily", "off at sunrise daily"]
    assert rules[0].id == "8AA75A50A8440B17941D192BD9E01FFA"


def test_smart_rules_recorded_by_a_p110_and_an_ep40m_are_read():
    (p110,) = fixture("smart/P110(UK)_1.0_1.3.0.json")["get_schedule_rules"]["rule_list"]
    assert str(smart_rule(p110)) == "on at 11:50 daily" and smart_rule(p110).id == "S1"
    children = fixture("smart/EP40M(US)_1.0_1.1.0.json")["child_devices"].values()
    recorded = [r for c in children for r in c["get_schedule_rules"]["rule_list"]]
    assert [str(smart_rule(r)) for r in recorded] == ["on at sunset-15m daily", "off at 22:10 daily"]


@pytest.mark.parametrize("rule", [
    Rule(on=True, when=When(minute=450), days=frozenset({0, 2, 4})),
    Rule(on=False, when=When(sun="sunset", offset=-15), days=frozenset({5, 6}), enabled=False),
    Rule(on=True, when=When(sun="sunrise", offset=30), days=EVERY_DAY, once=True),
    Rule(on=True, when=When(minute=0), days=frozenset({6})),
])
def test_a_rule_written_in_either_dialect_reads_back_the_same(rule):
    assert iot_rule(iot_form(rule, bulb=False)).same(rule)
    assert smart_rule(smart_form(rule, datetime.date(2026, 11, 29))).same(rule)


def test_iot_form_counts_days_from_sunday_and_bulbs_carry_their_light():
    rule = Rule(on=True, when=When(minute=450), days=frozenset({6, 0}), brightness=40)
    form = iot_form(rule, bulb=True)
    assert form["wday"] == [1, 1, 0, 0, 0, 0, 0]  # Sunday, Monday
    assert form["sact"] == 2 and form["s_light"] == {"on_off": 1, "brightness": 40}
    assert iot_rule(form).same(rule)
    assert iot_form(Rule(on=False, when=When(sun="sunset", offset=-20), days=EVERY_DAY), bulb=False) | {} == {
        **iot_form(Rule(on=False, when=When(sun="sunset", offset=-20), days=EVERY_DAY), bulb=False),
        "stime_opt": 2, "smin": 0, "soffset": -20, "sact": 0,
    }


def test_smart_form_is_the_recorded_shape():
    recorded = fixture("smart/P110(UK)_1.0_1.3.0.json")["get_schedule_rules"]["rule_list"][0]
    form = smart_form(smart_rule(recorded), datetime.date(2024, 1, 20))
    assert form == {k: v for k, v in recorded.items() if k != "id"}


def test_rules_of_unknown_kinds_are_kept_apart():
    assert iot_rule({"stime_opt": 0, "wday": [1] * 7, "smin": 10, "sact": 3, "s_dimmer": {}}) is None
    assert iot_rule({"stime_opt": 5, "wday": [1] * 7}) is None
    assert smart_rule({"s_type": "normal", "week_day": 127, "desired_states": "on"}) is None


def test_rule_ids_are_found_by_their_start():
    rules = schedule.Rules([schedule.Listed({"id": "8AA75A50"}, None), schedule.Listed({"id": "9F62073C"}, None),
                            schedule.Listed({"id": "8AB00000"}, None)])
    assert rules.find("9f").id == "9F62073C"
    assert rules.find("8AA75A50").id == "8AA75A50"
    with pytest.raises(UsageError, match="start of 2"):
        rules.find("8A")
    with pytest.raises(UsageError, match="no rule"):
        rules.find("77")


# -- schedule files ----------------------------------------------------------------------------


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "schedules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_schedule_file_is_read_in_order(tmp_path):
    path = write(tmp_path, '''
["Porch Light"]
rules = [
  { action = "on", at = "sunset-15m" },
  { action = "off", at = "23:30", days = "weekdays", enabled = false },
]

[Heater]
rules = []
''')
    wanted = load(path)
    assert list(wanted) == ["Porch Light", "Heater"]
    assert [str(r) for r in wanted["Porch Light"]] == ["on at sunset-15m daily", "off at 23:30 weekdays (disabled)"]
    assert wanted["Heater"] == []


@pytest.mark.parametrize("text, says", [
    ('["Porch"]\nrules = [ { action = "on" } ]', 'rule 1: at is required'),
    ('["Porch"]\nrules = [ { action = "on", at = "7.30" } ]', "rule 1: '7.30' is not a time of day"),
    ('["Porch"]\nrules = [ { action = "on", at = "07:30", colour = "red" } ]', "unknown key 'colour'"),
    ('["Porch"]\nrule = []', "one key, rules"),
    ('["Porch"]\nrules = [ { action = "on", at = "07:30", days = "someday" } ]', "not a set of days"),
    ('["Porch"\nrules = []', "not a TOML file"),
    ("", "names no device"),
])
def test_mistakes_in_a_schedule_file_are_one_line_saying_where(tmp_path, text, says):
    with pytest.raises(UsageError) as caught:
        load(write(tmp_path, text))
    assert says in caught.value.message and "schedules.toml" in caught.value.message


def test_a_missing_schedule_file_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="cannot be read"):
        load(tmp_path / "nope.toml")


# -- zones -------------------------------------------------------------------------------------


def test_the_iot_zone_table_has_every_index_and_this_machine_has_its_zones():
    assert len(zones.IOT_ZONES) == 110
    assert zones.IOT_ZONES[38] == "UCT" and zones.IOT_ZONES[39] == "GB" and zones.IOT_ZONES[104] == "Pacific/Auckland"
    assert all(zones.iot_zone(i) is not None for i in range(110))
    assert zones.iot_zone(110) is None and zones.iot_zone(-1) is None


@pytest.mark.parametrize("tz, index", [("Europe/Berlin", 41), ("Asia/Tokyo", 90), ("UTC", 38), ("Pacific/Auckland", 104)])
def test_this_machines_zone_is_found_among_the_iot_zones(monkeypatch, tz, index):
    import time

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert zones.iot_index_for_here(2026) == index
    finally:
        monkeypatch.undo()
        time.tzset()
