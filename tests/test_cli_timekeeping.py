"""Timers, schedules and clocks end to end: `tpcloud switch --for`, `timer`, `schedule` (and
`schedule apply`) and `time` as processes, against the emulated home over every route: XOR, KLAP
v1 (Kasa) and v2 (Tapo), AES, and the cloud's passthrough for Kasa devices; strip outlets in
both dialects.

What tpcloud set is read back from the emulator's own state, in the device's own format
(`rules()`), and a countdown is fired by moving the emulator's timer time on
(`advance_timers`), as the device would when the time is up.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import ExitStack

import pytest

from tests.doubles.devices.smart import SmartDevice
from tests.doubles.home import _serve
from tests.doubles.wires import XorServer, pick_loopback_host

# (name, --via, where the emulator keeps it: None for a device, else the outlet's index or id)
ROUTES = [
    pytest.param("Desk Lamp", "local", id="xor"),
    pytest.param("Desk Lamp", "cloud", id="kasa-cloud"),
    pytest.param("Hallway", "local", id="klap1-kasa"),
    pytest.param("Living Room", "local", id="klap2-tapo"),
    pytest.param("Bedroom", "local", id="aes-tapo"),
    pytest.param("Office Strip/Printer", "local", id="xor-outlet"),
    pytest.param("Office Strip/Printer", "cloud", id="kasa-cloud-outlet"),
    pytest.param("Power Strip/Heater", "local", id="klap2-tapo-outlet"),
]


@pytest.fixture
def resident(user, home):
    """A logged-in user whose discovery has learnt every device's LAN address."""
    assert user("discover", "--timeout", "1.5").code == 0
    return user


def where(home, name: str):
    """The emulator behind NAME and the keyword that points its helpers at the outlet, if any."""
    device_name, _, outlet = name.partition("/")
    device = home.devices[device_name]
    if not outlet:
        return device, {}
    if isinstance(device, SmartDevice):
        child = next(c for c in device.child_ids() if device.child_nickname(c) == outlet)
        return device, {"child_id": child}
    index = next(i for i, c in enumerate(device.children) if c["alias"] == outlet)
    return device, {"child_index": index}


def is_on(device, at: dict) -> bool:
    if isinstance(device, SmartDevice):
        return bool(device.is_on(at.get("child_id")))
    return device.is_on(at.get("child_index"))


def countdown_rules(device, at: dict) -> list[dict]:
    return device.rules("countdown" if isinstance(device, SmartDevice) else "count_down", **at)


def ok(result):
    assert result.code == 0, result
    return result


# -- countdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, via", ROUTES)
def test_switch_for_sets_the_devices_own_countdown_which_switches_it_back(resident, home, name, via):
    device, at = where(home, name)
    result = ok(resident("switch", name, "on", "--for", "45m", "--via", via))
    assert result.stdout.strip() == f"{name}: on (off in 45m 0s)"
    assert is_on(device, at)
    (rule,) = [r for r in countdown_rules(device, at) if r.get("enable")]
    assert rule["delay"] == 2700
    assert (rule["desired_states"] == {"on": False}) if isinstance(device, SmartDevice) else rule["act"] == 0

    device.advance_timers(600)
    shown = ok(resident("timer", name, "--via", via)).stdout.strip()
    assert shown.startswith(f"{name}: off in 3") and "m" in shown  # 35 minutes left, give or take a second
    assert "timer: off in 3" in ok(resident("state", name, "--via", via)).stdout

    device.advance_timers(2100)  # the time is up: the device switches itself off
    assert not is_on(device, at)
    assert ok(resident("timer", name, "--via", via)).stdout.strip() == f"{name}: no timer"
    assert "timer:" not in ok(resident("state", name, "--via", via)).stdout


@pytest.mark.parametrize("name, via", ROUTES[:1] + ROUTES[3:4] + ROUTES[7:])
def test_timer_clear_cancels_the_countdown(resident, home, name, via):
    device, at = where(home, name)
    ok(resident("switch", name, "off", "--for", "10m", "--via", via))
    assert not is_on(device, at)
    assert ok(resident("timer", name, "--clear", "--via", via)).stdout.strip() == f"{name}: timer cleared"
    device.advance_timers(3600)
    assert not is_on(device, at)  # nothing switched it back on
    assert ok(resident("timer", name, "--via", via)).stdout.strip() == f"{name}: no timer"


def test_a_new_countdown_replaces_the_pending_one(resident, home):
    device = home.devices["Living Room"]
    ok(resident("switch", "Living Room", "on", "--for", "1h"))
    ok(resident("switch", "Living Room", "on", "--for", "5m"))
    assert [r["delay"] for r in device.rules("countdown") if r["enable"]] == [300]


def test_toggle_for_switches_to_the_opposite_and_back(resident, home):
    lamp = home.devices["Desk Lamp"]
    lamp.set_state(True)
    result = ok(resident("switch", "Desk Lamp", "toggle", "--for", "30s", "--via", "local", "--json"))
    data = json.loads(result.stdout)
    assert data["on"] is False and data["timer"] == {"action": "on", "delay": 30, "remaining": 30}
    lamp.advance_timers(30)
    assert lamp.is_on() is True


def test_a_strip_named_whole_gets_a_countdown_on_each_outlet(resident, home):
    strip = home.devices["Power Strip"]
    result = ok(resident("switch", "Power Strip", "on", "--for", "20m"))
    assert result.stdout.splitlines() == [f"Power Strip/{o}: on (off in 20m 0s)" for o in ("Fan", "Radio", "Heater")]
    assert all(strip.is_on(c) for c in strip.child_ids())
    shown = ok(resident("timer", "Power Strip")).stdout.splitlines()
    assert len(shown) == 3 and all(re.fullmatch(r"Power Strip/\w+: off in (20m 0s|19m \d+s)", line) for line in shown), shown
    strip.advance_timers(1200)
    assert not any(strip.is_on(c) for c in strip.child_ids())


def test_several_names_and_groups_each_get_a_countdown(resident, home):
    resident.config_dir.mkdir(parents=True, exist_ok=True)
    (resident.config_dir / "config.toml").write_text('[groups]\nmorning = ["Desk Lamp", "Living Room"]\n')
    data = json.loads(ok(resident("switch", "morning", "Bedroom", "on", "--for", "1h30m", "--json")).stdout)
    assert [(d["name"], d["timer"]["delay"], d["error"]) for d in data] == [
        ("Desk Lamp", 5400, None), ("Living Room", 5400, None), ("Bedroom", 5400, None)]


def test_a_device_without_a_countdown_is_left_as_it_was(resident, home):
    bulb = home.cloud.by_alias["Hall Bulb"]  # Kasa bulbs have no count_down module
    before = bulb.is_on()
    result = resident("switch", "Hall Bulb", "on", "--for", "10m")
    assert result.code == 5
    assert result.stderr.strip() == "tpcloud: Hall Bulb: the device has no countdown timer"
    assert bulb.is_on() == before


def test_a_countdown_the_device_refuses_leaves_the_power_alone(resident, home):
    lamp = home.devices["Desk Lamp"]
    lamp.set_state(False)
    lamp.remove_method("count_down", "add_rule")  # answered "member not support" (-2)
    result = resident("switch", "Desk Lamp", "on", "--for", "10m", "--via", "local")
    assert result.code == 5 and result.stderr.strip() == "tpcloud: Desk Lamp: the device has no countdown timer"
    assert lamp.is_on() is False


@pytest.mark.parametrize("duration, says", [
    ("soon", "'soon' is not a duration"), ("0s", "no time at all"), ("25h", "24h at most"),
])
def test_bad_durations_are_refused_before_anything_is_sent(resident, home, duration, says):
    tapo = home.devices["Living Room"]
    tapo.set_on(False)
    result = resident("switch", "Living Room", "on", "--for", duration)
    assert result.code == 2 and says in result.stderr, result
    assert tapo.is_on() is False and tapo.rules("countdown") == tapo.rules("countdown")


# -- schedules ---------------------------------------------------------------------------------


def schedule_rules(device, at: dict) -> list[dict]:
    return device.rules("schedule", **at)


@pytest.mark.parametrize("name, via", ROUTES)
def test_schedule_rules_round_trip_in_the_devices_own_form(resident, home, name, via):
    device, at = where(home, name)
    before = len(schedule_rules(device, at))
    added = ok(resident("schedule", name, "add", "on", "--sunset", "--offset", "-15m", "--via", via))
    assert added.stdout.strip() == f"{name}: added on at sunset-15m daily"
    ok(resident("schedule", name, "add", "off", "--at", "23:30", "--days", "weekdays", "--via", via))

    stored = schedule_rules(device, at)[before:]
    if isinstance(device, SmartDevice):
        assert [(r["s_type"], r["time_offset"], r["week_day"], r["desired_states"]) for r in stored] == [
            ("sunset", -15, 127, {"on": True}), ("normal", 0, 0b0111110, {"on": False})]
        assert stored[1]["s_min"] == 23 * 60 + 30
    else:
        assert [(r["stime_opt"], r["soffset"], r["wday"], r["sact"]) for r in stored] == [
            (2, -15, [1] * 7, 1), (0, 0, [0, 1, 1, 1, 1, 1, 0], 0)]
        assert stored[1]["smin"] == 23 * 60 + 30
        assert device.schedule_enabled(**at)  # add switches the module on as a whole

    listed = json.loads(ok(resident("schedule", name, "list", "--json", "--via", via)).stdout)
    mine = listed["rules"][before:]
    assert [(r["action"], r["at"], r["days"]) for r in mine] == [
        ("on", "sunset-15m", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        ("off", "23:30", ["mon", "tue", "wed", "thu", "fri"])]
    second = mine[1]["id"]

    out = ok(resident("schedule", name, "disable", second[:8], "--via", via)).stdout.strip()
    assert out.startswith(f"{name}: disabled") and out.endswith("(disabled)")
    assert not schedule_rules(device, at)[before + 1]["enable"]
    ok(resident("schedule", name, "enable", second, "--via", via))
    assert schedule_rules(device, at)[before + 1]["enable"]

    ok(resident("schedule", name, "rm", second, "--via", via))
    assert len(schedule_rules(device, at)) == before + 1
    cleared = ok(resident("schedule", name, "clear", "--via", via))
    assert f"{name}: removed on at sunset-15m daily" in cleared.stdout
    assert schedule_rules(device, at) == []
    assert ok(resident("schedule", name, "--via", via)).stdout.strip() == f"{name}: 0 rules"


@pytest.fixture
def porch(home):
    """A KP105 whose fixture carries two rules made in the Kasa app, on the LAN over XOR."""
    device = home.cloud.add_iot_device("KP105(UK)_1.0_1.0.5.json", "Porch")
    with ExitStack() as stack:
        host = pick_loopback_host(udp_ports=(9999, 20002), tcp_ports=(9999,))
        _serve(stack, home, "Porch", XorServer(device, host, 9999), device)
        yield device


def test_the_rules_a_device_recorded_are_listed(porch, user, home):
    user.env["TPCLOUD_DISCOVERY_TARGET"] = home.targets
    ok(user("discover", "--timeout", "1.5"))
    out = ok(user("schedule", "Porch", "--via", "local")).stdout.splitlines()
    assert out == ["Porch: 2 rules", "  8AA75A50  on at sunset daily", "  9F62073C  off at sunrise daily"]


def test_a_bulb_schedule_carries_its_brightness(resident, home):
    bulb = home.cloud.by_alias["Hall Bulb"]  # over the cloud
    ok(resident("schedule", "Hall Bulb", "add", "on", "--at", "07:00", "--brightness", "40"))
    (rule,) = bulb.rules("schedule")
    assert rule["sact"] == 2 and rule["s_light"] == {"on_off": 1, "brightness": 40}
    assert "on 40% at 07:00 daily" in ok(resident("schedule", "Hall Bulb")).stdout


def test_a_rule_the_device_refuses_is_named_and_nothing_is_added(resident, home):
    lamp = home.devices["Desk Lamp"]
    for minute in range(32):
        ok(resident("schedule", "Desk Lamp", "add", "on", "--at", f"06:{minute:02d}", "--via", "local"))
    result = resident("schedule", "Desk Lamp", "add", "off", "--at", "22:00", "--via", "local")
    assert result.code == 5
    assert result.stderr.startswith('tpcloud: Desk Lamp: the device refused the rule "off at 22:00 daily"')
    assert len(lamp.rules("schedule")) == 32


def test_a_device_without_schedules_says_so(resident, home):
    tapo = home.devices["Living Room"]
    tapo.remove_method("get_schedule_rules")
    result = resident("schedule", "Living Room")
    assert result.code == 5 and result.stderr.strip() == "tpcloud: Living Room: the device has no schedule"


@pytest.mark.parametrize("args, says", [
    (["add", "on"], "say when, once"),
    (["add", "on", "--at", "07:00", "--sunset"], "say when, once"),
    (["add", "on", "--at", "25:00"], "not a time of day"),
    (["add", "on", "--at", "07:00", "--offset", "5m"], "--offset goes with"),
    (["add", "dim", "--at", "07:00"], "on or off"),
    (["add", "on", "--at", "07:00", "--days", "someday"], "not a set of days"),
    (["rm"], "takes a rule id"),
    (["list", "--at", "07:00"], "go with add"),
    (["frobnicate"], "unknown schedule action"),
    (["rm", "NOPE"], 'no rule has the id "NOPE"'),
])
def test_schedule_usage_mistakes_are_one_line(resident, home, args, says):
    result = resident("schedule", "Living Room", *args)
    assert result.code == 2 and says in result.stderr and len(result.stderr.strip().splitlines()) == 1, result


def test_a_strip_named_whole_has_schedules_per_outlet(resident):
    result = resident("schedule", "Power Strip", "add", "on", "--at", "07:00")
    assert result.code == 2 and "per outlet" in result.stderr


# -- schedule apply ----------------------------------------------------------------------------


SCHEDULES = '''
["Desk Lamp"]
rules = [
  { action = "on", at = "sunset-15m" },
  { action = "off", at = "23:30", days = "weekdays" },
]

["Power Strip/Heater"]
rules = [ { action = "on", at = "06:30", days = "weekdays" } ]

["Living Room"]
rules = []
'''


def requests_changing(device) -> int:
    """How many requests DEVICE got that were not reads."""
    def changes(request) -> bool:
        if "method" in request:
            inner = request.get("params", {}).get("requestData", request) if request["method"] == "control_child" else request
            if inner.get("method") == "multipleRequest":
                return any(not r["method"].startswith("get_") for r in inner["params"]["requests"])
            return not inner["method"].startswith("get_")
        return any(not m.startswith("get_") for module, body in request.items() if module != "context" for m in body)
    return sum(map(changes, device.requests))


def test_schedule_apply_makes_the_rules_what_the_file_says_and_a_second_run_changes_nothing(resident, home, tmp_path):
    lamp, strip, tapo = home.devices["Desk Lamp"], home.devices["Power Strip"], home.devices["Living Room"]
    heater = next(c for c in strip.child_ids() if strip.child_nickname(c) == "Heater")
    ok(resident("schedule", "Desk Lamp", "add", "off", "--at", "23:30", "--days", "weekdays", "--via", "local"))
    ok(resident("schedule", "Desk Lamp", "add", "on", "--at", "18:00", "--via", "local"))  # not in the file
    ok(resident("schedule", "Living Room", "add", "on", "--at", "08:00"))
    path = tmp_path / "schedules.toml"
    path.write_text(SCHEDULES)

    dry = ok(resident("schedule", "apply", str(path), "--dry-run"))
    assert dry.stdout.splitlines() == [
        "Desk Lamp: would add on at sunset-15m daily",
        "Desk Lamp: would remove on at 18:00 daily",
        "Power Strip/Heater: would add on at 06:30 weekdays",
        "Living Room: would remove on at 08:00 daily",
    ]
    assert len(lamp.rules("schedule")) == 2 and len(tapo.rules("schedule")) == 1

    applied = ok(resident("schedule", "apply", str(path)))
    assert applied.stdout.splitlines() == [line.replace("would add", "added").replace("would remove", "removed")
                                           for line in dry.stdout.splitlines()]
    assert sorted((r["stime_opt"], r["smin"] if r["stime_opt"] == 0 else r["soffset"]) for r in lamp.rules("schedule")) == [
        (0, 23 * 60 + 30), (2, -15)]
    assert [(r["s_min"], r["week_day"]) for r in strip.rules("schedule", child_id=heater)] == [(390, 0b0111110)]
    assert tapo.rules("schedule") == []

    counts = [requests_changing(d) for d in (lamp, strip, tapo)]
    again = ok(resident("schedule", "apply", str(path)))
    assert again.stdout.splitlines() == [
        "Desk Lamp: up to date (2 rules)", "Power Strip/Heater: up to date (1 rule)", "Living Room: up to date (0 rules)"]
    assert [requests_changing(d) for d in (lamp, strip, tapo)] == counts


def test_schedule_apply_keeps_to_the_names_given_and_speaks_json(resident, home, tmp_path):
    path = tmp_path / "schedules.toml"
    path.write_text(SCHEDULES)
    data = json.loads(ok(resident("schedule", "apply", str(path), "Living Room", "Desk Lamp", "--json")).stdout)
    assert [d["name"] for d in data] == ["Desk Lamp", "Living Room"]
    assert [r["at"] for r in data[0]["added"]] == ["sunset-15m", "23:30"] and data[0]["error"] is None
    assert home.devices["Power Strip"].rules("schedule", child_id=home.devices["Power Strip"].child_ids()[2]) == []


def test_a_bad_schedule_file_changes_nothing(resident, home, tmp_path):
    path = tmp_path / "schedules.toml"
    path.write_text('["Desk Lamp"]\nrules = [ { action = "on", at = "sunset" }, { action = "on", at = "7pm" } ]\n')
    result = resident("schedule", "apply", str(path))
    assert result.code == 2
    assert result.stderr.strip() == f"""tpcloud: {path}: "Desk Lamp" rule 2: '7pm' is not a time of day: write HH:MM (24-hour), sunrise or sunset, with an offset such as sunset-15m"""
    assert home.devices["Desk Lamp"].rules("schedule") == []
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('["Nobody"]\nrules = []\n')
    assert resident("schedule", "apply", str(unknown)).code == 4


# -- the clock ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, via", [ROUTES[0], ROUTES[1], ROUTES[3], ROUTES[4], ROUTES[5]])
def test_time_shows_how_far_the_clock_is_off_and_sync_sets_it(resident, home, name, via):
    device, _ = where(home, name)
    device.clock_skew = 300
    shown = ok(resident("time", name, "--via", via, env={"TZ": "Europe/Berlin"})).stdout.strip()
    assert shown.endswith("5m 0s ahead of this machine") or shown.endswith("4m 59s ahead of this machine"), shown

    synced = ok(resident("time", name, "--sync", "--via", via, env={"TZ": "Europe/Berlin"}))
    assert "set to" in synced.stdout and synced.stdout.strip().endswith("in step with this machine")
    assert abs(device.device_now().timestamp() - time.time()) < 3
    data = json.loads(ok(resident("time", name, "--json", "--via", via, env={"TZ": "Europe/Berlin"})).stdout)
    assert data["zone"] == "Europe/Berlin" if isinstance(device, SmartDevice) else data["zone"] == "Europe/Amsterdam"
    assert data["utc_offset_minutes"] == 60 and abs(data["drift_seconds"]) <= 2


def test_an_iot_clock_in_a_zone_it_knows_by_number(resident, home):
    lamp = home.devices["Desk Lamp"]
    lamp.tz_index = 39  # GB
    lamp.clock_skew = -90
    data = json.loads(ok(resident("time", "Desk Lamp", "--via", "local", "--json")).stdout)
    assert data["zone"] == "GB" and -92 <= data["drift_seconds"] <= -88


def test_doctor_warns_of_a_clock_more_than_a_minute_off(resident, home):
    home.devices["Living Room"].clock_skew = -600
    home.devices["Desk Lamp"].clock_skew = 20  # within a minute: no warning
    checks = {c["check"]: c for c in json.loads(resident("doctor", "--json").stdout)}
    assert "clock Living Room" in checks, checks
    warning = checks["clock Living Room"]
    # devices tell whole seconds: a second may tick between the device's reading and this machine's
    assert warning["status"] == "warning" and warning["detail"].split(" behind this machine")[0] in (
        "9m 59s", "10m 0s", "10m 1s"), warning
    assert warning["fix"] == 'run `tpcloud time "Living Room" --sync`'
    assert "clock Desk Lamp" not in checks


def with_lamps_group(user) -> None:
    user.config_dir.mkdir(parents=True, exist_ok=True)
    (user.config_dir / "config.toml").write_text('[groups]\nlamps = ["Desk Lamp", "Hallway"]\n')


def test_schedule_apply_takes_groups_and_a_device_that_fails_is_its_own_line(resident, home, tmp_path):
    with_lamps_group(resident)
    path = tmp_path / "schedules.toml"
    path.write_text('[lamps]\nrules = [ { action = "off", at = "23:00" } ]\n\n[Garage]\nrules = []\n')
    result = resident("schedule", "apply", str(path))
    assert result.code == 6, result  # Garage is offline: unreachable
    assert result.stdout.splitlines() == ["Desk Lamp: added off at 23:00 daily", "Hallway: added off at 23:00 daily"]
    assert result.stderr.startswith("tpcloud: Garage: ") and len(result.stderr.splitlines()) == 1
    for name in ("Desk Lamp", "Hallway"):
        assert [(r["smin"], r["sact"]) for r in home.devices[name].rules("schedule")] == [(23 * 60, 0)]


def test_a_device_named_twice_in_a_schedule_file_stops_before_anything_changes(resident, home, tmp_path):
    with_lamps_group(resident)
    path = tmp_path / "schedules.toml"
    path.write_text('[lamps]\nrules = []\n\n["Desk Lamp"]\nrules = [ { action = "on", at = "07:00" } ]\n')
    result = resident("schedule", "apply", str(path))
    assert result.code == 2 and "names Desk Lamp twice" in result.stderr
    assert home.devices["Desk Lamp"].rules("schedule") == []
