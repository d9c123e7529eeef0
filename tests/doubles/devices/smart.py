"""Device layer: a stateful fake of a Tapo / newer Kasa device speaking the SMART JSON dialect.

Seeded from a python-kasa fixture in tests/fixtures/smart/.  No transport here: the wire
emulators in tests/doubles/wires/ (KLAP v2, AES securePassthrough, UDP 20002) wrap it.  It does
not import tpcloud.

    dev = SmartDevice.from_fixture("P110(EU)_1.0_1.2.3", nickname="Desk lamp")
    dev.handle({"method": "set_device_info", "params": {"device_on": True}})
    assert dev.is_on()

Replies are ``{"error_code": 0, "result": {...}}``; ``set_*`` methods answer ``{"error_code": 0}``
with no result, as real devices do.  Error codes: -1002 unknown / unsupported method,
-1008 bad parameters (wrong type, out of range, or a field this device does not have),
-1003 request that is not a JSON object with a string ``method``.

``multipleRequest`` answers ``{"error_code": 0, "result": {"responses": [{"method", "error_code",
"result"}, ...]}}`` (python-kasa's ``SmartProtocol`` reads this form), one entry per request in
the order given, ``control_child`` included; no peer was seen sending ``control_child`` inside it
(they nest ``multipleRequest`` inside ``control_child``, which works too), so that a strip takes
it is a guess. ``refusing`` (child id -> error_code, empty unless a test fills it) makes an
outlet answer every ``set_device_info`` with that code and stay as it is.

Energy meters (devices and strip outlets whose fixture answers ``get_energy_usage``) also answer
``get_energy_data`` from days that tests add with ``record_energy``: as described for P110-class
firmware (mihai-dinculescu/tapo's ``EnergyDataInterval``, and a P110M's recorded behaviour), the
device takes ``start_timestamp`` as a local time, rounds it down to the first day of its quarter
(``interval`` 1440: one Wh figure per day of that quarter) or of its year (``interval`` 43200:
one per month), and echoes the request's timestamps and interval. Once days are recorded,
``get_energy_usage``'s ``today_energy`` and ``month_energy`` are computed from them too.
A day or month the meter does not hold is 0 in ``data``, as it is for a day without use: the
device's answer cannot tell the two apart.
``interval`` 60 (hours, as tapo's ``EnergyDataInterval::Hourly`` describes it): ``start_timestamp``
is local midnight of the first day (rounded down to it), ``end_timestamp`` 23:59:59 local of the
last, at most 8 days inclusive (more, or an end before the start: -1008); ``data`` is 24 Wh
figures per day from the start, local wall-clock hours (a day of a DST change still has 24).

Choices not checked against a device, for the energy meter's test hooks:
- ``reset_meter(child_id=None)``: that meter's history is gone and ``today_energy`` and
  ``month_energy`` read 0 (until days are recorded again), as after a reset in the app.
- ``keep_only(days=N, months=M)``: every meter of the device answers 0 for days older than its
  last N (today included) and months older than its last M (this one included); a month's
  figure still counts the days forgotten. Reports of a P110 firmware update that dropped the
  history are why; how long a P110 keeps days and months is not known here.
- ``record_hourly(hour, wh, child_id=None)``: the meter measured WH in the hour starting at HOUR
  (a naive local datetime); that day's figure grows by WH too, so days and hours agree. Days
  recorded with ``record_energy`` have no hours: the emulator does not spread them.
- ``keep_only(hour_days=H)``: hours of days older than the last H (today included) answer 0;
  without it, hours are kept as long as days (``days=N``). How far back a real meter keeps hours
  is not known here.

Fixtures are scrubbed, so by default each fake gets a 40-hex ``device_id`` derived from the fixture
name and nickname, a MAC ending in that id's last six digits, strip children with ids
``<parent id>00``, ``01``... (ordered by ``position``) and nicknames "<parent nickname> <position>".

Countdowns, schedules and the clock. A device or strip outlet has them only when its fixture
records ``get_countdown_rules`` / ``get_schedule_rules`` / ``get_device_time`` (at the top level,
or in the outlet's ``child_devices`` entry; strip parents record only the clock), else they
answer -1002 like any unknown method; the fixture's answers seed the state.
- Countdown: ``get_countdown_rules``, ``add_countdown_rule`` (answers ``{"id": "C1"}``),
  ``edit_countdown_rule``, ``remove_countdown_rules``. An enabled rule FIRES when ``delay``
  seconds of timer time have passed: the device or outlet takes ``desired_states`` (``on``, and
  ``brightness`` if it has one) and the rule stays listed with ``enable`` false, ``remain`` 0, as
  the P110(UK) fixture records a spent rule. Due timers are checked at the start of every
  ``handle`` and in ``is_on`` / ``rules``.
- Schedule: ``get_schedule_rules`` (pages of ``start_index``), ``add_schedule_rule`` (answers
  ``{"id": "S<n>"}``), ``edit_schedule_rule``, ``remove_schedule_rules``. Rules are kept as sent
  plus their ``id`` (for a sunrise/sunset rule the device would compute ``s_min``: the one sent
  is kept); rules never run.
- Clock: ``get_device_time`` (``timestamp`` live, ``time_diff`` and ``region`` seeded from the
  fixture) and ``set_device_time``; one clock per device, the outlets have none of their own.

Test API for them (all under the device's lock):
- ``time_scale`` (property, default 1.0): timer seconds per real second, from a monotonic clock;
  ``advance_timers(seconds)`` jumps timer time. Neither moves the clock.
- ``clock_skew`` (seconds ahead of the host's clock), ``time_diff`` (minutes east of UTC),
  ``region``; ``set_clock(when)`` (aware datetime, or unix seconds), ``device_now()`` (aware,
  at ``time_diff``), ``wall_clock()`` (naive local time).
- ``rules(kind="schedule", child_id=None)`` (``"schedule"`` or ``"countdown"``): the rule list
  as the device lists it, every page.
- ``remove_method(method, child_id=None)``: the method then answers -1002; without ``child_id``
  on the device and every outlet. Naming ``get_countdown_rules``, ``get_schedule_rules`` or
  ``get_device_time`` removes the whole group (add/edit/remove, ``set_device_time``).
  ``component_nego`` is left as recorded (strip parents list ``countdown`` and ``schedule``
  there without answering them, too).

Choices not checked against a device, for countdowns, schedules and the clock:
- Error codes: a second ``add_countdown_rule`` while an enabled rule is pending answers -1902
  and a schedule rule over ``schedule_rule_max_count`` (the fixture's: 32, 20 or 16) -1802 (both
  named in python-kasa's ``SmartErrorCode``: COUNTDOWN_CONFLICT_ERROR, SCHEDULE_FULL_ERROR; that
  devices send them here is a guess); everything else invalid is -1008, nothing changed.
- ``add_countdown_rule`` when no rule is pending replaces the listed (spent or disabled) rule;
  the rule's id is always "C1" (``countdown_rule_max_count`` is 1 in every fixture).
  ``remain`` is the seconds left, rounded up, for a pending rule, else 0. Adding or editing with
  ``enable`` true (re)starts the timer from the full ``delay``; ``enable`` false stops it.
- The top-level ``enable`` of both lists is true while any listed rule is enabled (every
  fixture agrees with that).
- Validation: countdown ``delay`` an int 1..86400, ``desired_states`` a dict with a bool ``on``
  (``brightness`` 1..100 if sent), ``enable`` a bool, all three required. Schedule: required
  ``s_min`` 0..1439, ``s_type`` normal|sunrise|sunset, ``week_day`` 0..127 (bit 0 = Sunday ...
  bit 6 = Saturday, a guess), ``desired_states`` as above, ``enable`` a bool, ``mode``
  repeat|once; if sent, ``time_offset`` -1439..1439, ``e_min`` 0..1439, ``e_type`` like
  ``s_type``, ``e_action`` a string, ``day`` 0..31, ``month`` 0..12, ``year`` an int >= 0.
  Other fields are kept as sent. Edits lay the fields sent over the stored rule and validate
  the result; an unknown ``id`` is -1008.
- New schedule ids are "S" + (1 + the highest number in use), so ids are reused after a removal
  of the last rule. ``get_schedule_rules`` answers 10 rules per page from ``start_index``.
- ``remove_schedule_rules`` / ``remove_countdown_rules`` take ``{"remove_all": true}`` or
  ``{"rule_list": [{"id": ...}, ...]}`` (every id must exist).
- ``set_device_time`` needs ``timestamp`` (an int >= 0) and ``time_diff`` (minutes, -720..840);
  ``region`` a string if sent, else kept.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import math
import threading
import time
from pathlib import Path
from typing import Any

from .iot import ScaledClock

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "smart"

UNKNOWN_METHOD = -1002
JSON_DECODE_FAIL = -1003
PARAMS_ERROR = -1008
SCHEDULE_FULL_ERROR = -1802  # python-kasa's names; when a device sends them is a guess
COUNTDOWN_CONFLICT_ERROR = -1902

HOUR, DAY, MONTH = 60, 1440, 43200  # get_energy_data intervals, in minutes
HOURLY_DAYS = 8  # the longest span an hourly get_energy_data answers (days, inclusive)

# Fixture keys that are not answers to a method of the same name.
_NOT_METHODS = {"discovery_result", "child_devices"}
# get_child_device_list pages like real strips: 10 children per answer, from start_index.
_CHILD_PAGE = 10
_SCHEDULE_PAGE = 10  # get_schedule_rules: rules per answer (a guess)
_MAX_COUNTDOWN_DELAY = 86400  # the Tapo app allows at most 24 h
_GROUPS = {
    "get_countdown_rules": ("get_countdown_rules", "add_countdown_rule", "edit_countdown_rule",
                            "remove_countdown_rules"),
    "get_schedule_rules": ("get_schedule_rules", "add_schedule_rule", "edit_schedule_rule",
                           "remove_schedule_rules"),
    "get_device_time": ("get_device_time", "set_device_time"),
}
_S_TYPES = ("normal", "sunrise", "sunset")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_fixture(name_or_path: str | Path, kind: str = "smart") -> Path:
    """A path, or a fixture name with or without ``.json`` under tests/fixtures/<kind>/."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    base = Path(__file__).resolve().parents[2] / "fixtures" / kind
    name = str(name_or_path)
    for candidate in (base / name, base / f"{name}.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {kind} fixture {name_or_path!r} in {base}")


class SmartDevice:
    """One SMART-dialect device (optionally a strip with children)."""

    dialect = "smart"

    def __init__(self, fixture: dict, *, nickname: str | None = None,
                 device_id: str | None = None, mac: str | None = None,
                 child_nicknames: list[str] | None = None, source: str = "<dict>"):
        self.fixture = copy.deepcopy(fixture)
        self.source = source
        self.lock = threading.RLock()
        self.requests: list[dict] = []  # every request handed to handle(), decoded, in order
        self.info: dict = copy.deepcopy(fixture.get("get_device_info", {}))
        if nickname is not None:
            self.info["nickname"] = _b64(nickname)
        # Fixtures are scrubbed (all-zero ids, 00-00-00 MACs): make each fake distinct.
        if device_id is None:
            seed = f"tpcloud-fake-smart|{source}|{nickname}"
            device_id = hashlib.sha1(seed.encode()).hexdigest().upper()
        self.info["device_id"] = device_id
        if mac is None:
            old = str(self.info.get("mac", "")).replace("-", "").replace(":", "").upper()
            oui = old[:6] if len(old) == 12 and old[:6] != "000000" else "5C628B"
            mac = oui + device_id[-6:].upper().rjust(6, "0")
        mac12 = mac.replace(":", "").replace("-", "").upper()
        if len(mac12) != 12:
            raise ValueError("mac must be 12 hex digits")
        self.info["mac"] = "-".join(mac12[i:i + 2] for i in range(0, 12, 2))
        # Static answers for the other methods the fixture recorded (tests may edit them).
        self.responses: dict[str, Any] = {
            k: copy.deepcopy(v) for k, v in fixture.items()
            if k not in _NOT_METHODS and k not in ("get_device_info", "get_child_device_list")
        }
        self.children: dict[str, dict] = {}
        self.child_responses: dict[str, dict[str, Any]] = {}
        child_list = fixture.get("get_child_device_list", {}).get("child_device_list", [])
        per_child = fixture.get("child_devices", {})
        parent_name = self.nickname
        ordered = sorted(child_list, key=lambda c: c.get("position", 0))
        for i, child in enumerate(ordered):
            child = copy.deepcopy(child)
            old_id = child["device_id"]
            # Real child ids are the parent id followed by a two-digit index.
            child["device_id"] = f"{device_id}{i:02d}"
            child["mac"] = mac12
            if child_nicknames is not None and i < len(child_nicknames):
                child["nickname"] = _b64(child_nicknames[i])
            else:
                old_name = base64.b64decode(child.get("nickname", "")).decode("utf-8", "replace")
                if old_name in ("", "#MASKED_NAME#"):
                    child["nickname"] = _b64(f"{parent_name} {child.get('position', i + 1)}")
            self.children[child["device_id"]] = child
            extra = copy.deepcopy(per_child.get(old_id, {}))
            extra.pop("get_device_info", None)
            self.child_responses[child["device_id"]] = extra
        self.energy_days: dict[str | None, dict[datetime.date, int]] = {}
        # how many days and months the meters still answer (None: all; see keep_only)
        self.kept_days: int | None = None
        self.kept_months: int | None = None
        self.energy_hours: dict[str | None, dict[datetime.datetime, int]] = {}  # see record_hourly
        self.kept_hour_days: int | None = None
        self.refusing: dict[str, int] = {}  # outlets that refuse set_device_info (see above)

        # countdowns, schedules, clock (see the module docstring); keys: None = the device, else a child id
        self.removed: dict[str | None, set[str]] = {}  # methods that answer -1002 (remove_method)
        self._timer_clock = ScaledClock()
        clock = fixture.get("get_device_time") or {}
        self.clock_skew: float = 0.0  # seconds the device's clock is ahead of the host's
        self.time_diff: int = clock.get("time_diff", 0)
        self.region: str = clock.get("region", "UTC")
        self._countdowns: dict[str | None, dict] = {}  # {"max", "rules": [stored], "due": {id: t}}
        self._schedules: dict[str | None, dict] = {}  # {"max", "rules": [stored]}
        for key in (None, *self.children):
            recorded = self.responses if key is None else self.child_responses[key]
            countdown = recorded.get("get_countdown_rules")
            if isinstance(countdown, dict):
                state = {"max": countdown.get("countdown_rule_max_count", 1), "rules": [], "due": {}}
                for rule in countdown.get("rule_list", []):
                    state["rules"].append({k: copy.deepcopy(v) for k, v in rule.items() if k != "remain"})
                    if rule.get("enable") and rule.get("remain", 0) > 0:
                        state["due"][rule["id"]] = self._timer_clock.now() + rule["remain"]
                self._countdowns[key] = state
            schedule = recorded.get("get_schedule_rules")
            if isinstance(schedule, dict):
                self._schedules[key] = {"max": schedule.get("schedule_rule_max_count", 32),
                                        "rules": copy.deepcopy(schedule.get("rule_list", []))}

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_fixture(cls, name: str | Path, *, nickname: str | None = None,
                     device_id: str | None = None, mac: str | None = None,
                     child_nicknames: list[str] | None = None) -> "SmartDevice":
        path = resolve_fixture(name, "smart")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(data, nickname=nickname, device_id=device_id, mac=mac,
                   child_nicknames=child_nicknames, source=path.stem)

    # ---------------------------------------------------------------- inspection helpers

    @property
    def device_id(self) -> str:
        return self.info.get("device_id", "")

    @property
    def mac(self) -> str:
        """12 upper-case hex digits, no separators (the cloud's ``deviceMac`` form)."""
        return self.info.get("mac", "").replace("-", "").replace(":", "").upper()

    @property
    def model(self) -> str:
        return self.info.get("model", "")

    @property
    def device_type(self) -> str:
        return self.info.get("type", "")

    @property
    def nickname(self) -> str:
        return base64.b64decode(self.info.get("nickname", "")).decode("utf-8", "replace")

    def child_ids(self) -> list[str]:
        """Children ordered by position (socket 1 first)."""
        return [c["device_id"] for c in sorted(self.children.values(),
                                               key=lambda c: c.get("position", 0))]

    def child_nickname(self, child_id: str) -> str:
        return base64.b64decode(self.children[child_id].get("nickname", "")).decode()

    def set_child_nickname(self, child_id: str, nickname: str) -> None:
        self.children[child_id]["nickname"] = _b64(nickname)

    def is_on(self, child_id: str | None = None) -> bool | None:
        """Relay / light state; None for a strip parent (it has no device_on)."""
        with self.lock:
            self._fire_due_timers()
            target = self.info if child_id is None else self.children[child_id]
            value = target.get("device_on")
            return None if value is None else bool(value)

    def set_on(self, on: bool, child_id: str | None = None) -> None:
        """Change state behind the client's back (e.g. someone pressed the button)."""
        with self.lock:
            (self.info if child_id is None else self.children[child_id])["device_on"] = bool(on)

    def discovery_id(self) -> str:
        """The 32-hex id a UDP 20002 reply carries (not the 40-hex device_id)."""
        return hashlib.md5(("disc:" + self.device_id + self.mac).encode()).hexdigest().upper()

    def discovery_result(self) -> dict:
        """``result`` of a UDP 20002 reply, before the emulator fills in ip/port/scheme."""
        base = copy.deepcopy(self.fixture.get("discovery_result", {}).get("result", {}))
        base.update({
            "device_type": self.device_type or base.get("device_type", "SMART.TAPOPLUG"),
            "device_model": base.get("device_model") or self.model,
            "device_id": self.discovery_id(),
            "mac": self.info.get("mac", ""),
        })
        base.setdefault("factory_default", False)
        base.setdefault("obd_src", "tplink")
        base.setdefault("is_support_iot_cloud", True)
        base.setdefault("mgt_encrypt_schm", {"encrypt_type": "KLAP", "http_port": 80,
                                             "is_support_https": False, "lv": 2})
        return base

    # ---------------------------------------------------------------- the dialect

    def handle(self, request: Any) -> dict:
        with self.lock:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                return {"error_code": JSON_DECODE_FAIL}
            self.requests.append(copy.deepcopy(request))
            self._fire_due_timers()
            return self._dispatch(None, request["method"], request.get("params") or {})

    def _dispatch(self, child_id: str | None, method: str, params: Any) -> dict:
        if not isinstance(params, dict):
            return {"error_code": PARAMS_ERROR}
        if method == "multipleRequest":
            return self._multiple(child_id, params)
        if method in self.removed.get(child_id, ()):
            return {"error_code": UNKNOWN_METHOD}
        rules = self._rules_method(child_id, method, params)
        if rules is not None:
            return rules
        usage = (self.responses if child_id is None else self.child_responses.get(child_id, {})).get("get_energy_usage")
        if usage is not None and method == "get_energy_usage":
            return {"error_code": 0, "result": self._energy_usage(child_id, usage)}
        if usage is not None and method == "get_energy_data":
            return self._energy_data(child_id, params)
        if child_id is None:
            handler = {
                "get_device_info": self._get_device_info,
                "set_device_info": self._set_device_info,
                "get_child_device_list": self._get_child_device_list,
                "control_child": self._control_child,
                "get_led_info": self._get_led_info,
                "set_led_info": self._set_led_info,
            }.get(method)
            if handler is not None:
                return handler(params)
            if method in self.responses and method.startswith(("get_", "component_nego",
                                                              "qs_component_nego")):
                return {"error_code": 0, "result": copy.deepcopy(self.responses[method])}
            return {"error_code": UNKNOWN_METHOD}
        # a child of a strip
        child = self.children[child_id]
        if method == "get_device_info":
            return {"error_code": 0, "result": copy.deepcopy(child)}
        if method == "set_device_info" and child_id in self.refusing:
            return {"error_code": self.refusing[child_id]}
        if method == "set_device_info":
            return self._apply_settings(child, params, allowed={"device_on", "nickname"})
        extra = self.child_responses.get(child_id, {})
        if method in extra and method.startswith(("get_", "component_nego")):
            return {"error_code": 0, "result": copy.deepcopy(extra[method])}
        return {"error_code": UNKNOWN_METHOD}

    def _multiple(self, child_id: str | None, params: dict) -> dict:
        reqs = params.get("requests")
        if not isinstance(reqs, list):
            return {"error_code": PARAMS_ERROR}
        responses = []
        for req in reqs:
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                responses.append({"method": None, "error_code": JSON_DECODE_FAIL})
                continue
            if req["method"] == "multipleRequest":
                resp = {"error_code": UNKNOWN_METHOD}
            else:
                resp = self._dispatch(child_id, req["method"], req.get("params") or {})
            entry = {"method": req["method"], "error_code": resp.get("error_code", 0)}
            if "result" in resp:
                entry["result"] = resp["result"]
            responses.append(entry)
        return {"error_code": 0, "result": {"responses": responses}}

    def _get_device_info(self, params: dict) -> dict:
        return {"error_code": 0, "result": copy.deepcopy(self.info)}

    def _set_device_info(self, params: dict) -> dict:
        return self._apply_settings(self.info, params, allowed={
            "device_on", "nickname", "brightness", "hue", "saturation", "color_temp"})

    def _apply_settings(self, target: dict, params: dict, allowed: set[str]) -> dict:
        if not params:
            return {"error_code": PARAMS_ERROR}
        changes: dict[str, Any] = {}
        for key, value in params.items():
            if key not in allowed or key not in target:
                return {"error_code": PARAMS_ERROR}
            if key == "device_on":
                if not isinstance(value, bool):
                    return {"error_code": PARAMS_ERROR}
            elif key == "nickname":
                if not isinstance(value, str):
                    return {"error_code": PARAMS_ERROR}
                try:
                    base64.b64decode(value, validate=True).decode("utf-8")
                except (ValueError, UnicodeDecodeError):
                    return {"error_code": PARAMS_ERROR}
            elif key == "brightness":
                if not _is_int(value) or not 1 <= value <= 100:
                    return {"error_code": PARAMS_ERROR}
            elif key == "hue":
                if not _is_int(value) or not 0 <= value <= 360:
                    return {"error_code": PARAMS_ERROR}
            elif key == "saturation":
                if not _is_int(value) or not 0 <= value <= 100:
                    return {"error_code": PARAMS_ERROR}
            elif key == "color_temp":
                lo, hi = target.get("color_temp_range", [2500, 6500])
                if not _is_int(value) or not (value == 0 or lo <= value <= hi):
                    return {"error_code": PARAMS_ERROR}
            changes[key] = value
        if ("hue" in changes or "saturation" in changes) and "color_temp" not in changes \
                and "color_temp" in target:
            changes["color_temp"] = 0  # a colour puts the bulb out of white mode
        target.update(changes)
        return {"error_code": 0}

    def _get_child_device_list(self, params: dict) -> dict:
        if not self.children:
            return {"error_code": UNKNOWN_METHOD}
        start = params.get("start_index", 0)
        if not _is_int(start) or start < 0:
            return {"error_code": PARAMS_ERROR}
        ordered = [self.children[i] for i in self.child_ids()]
        page = ordered[start:start + _CHILD_PAGE]
        return {"error_code": 0, "result": {"child_device_list": copy.deepcopy(page),
                                            "start_index": start, "sum": len(ordered)}}

    def _control_child(self, params: dict) -> dict:
        if not self.children:
            return {"error_code": UNKNOWN_METHOD}
        child_id = params.get("device_id")
        inner = params.get("requestData")
        if child_id not in self.children or not isinstance(inner, dict) \
                or not isinstance(inner.get("method"), str):
            return {"error_code": PARAMS_ERROR}
        resp = self._dispatch(child_id, inner["method"], inner.get("params") or {})
        return {"error_code": 0, "result": {"responseData": resp}}

    def _get_led_info(self, params: dict) -> dict:
        if "get_led_info" not in self.responses:
            return {"error_code": UNKNOWN_METHOD}
        return {"error_code": 0, "result": copy.deepcopy(self.responses["get_led_info"])}

    def _set_led_info(self, params: dict) -> dict:
        if "get_led_info" not in self.responses:
            return {"error_code": UNKNOWN_METHOD}
        led = self.responses["get_led_info"]
        rule = params.get("led_rule", led.get("led_rule"))
        status = params.get("led_status", rule != "never")
        if rule not in ("always", "never", "auto", "night_mode") or not isinstance(status, bool):
            return {"error_code": PARAMS_ERROR}
        if set(params) - set(led) - {"led_rule", "led_status"}:  # only settings this device has
            return {"error_code": PARAMS_ERROR}
        led.update(copy.deepcopy(params))
        led["led_rule"], led["led_status"] = rule, status
        return {"error_code": 0}

    # ---------------------------------------------------------------- the energy meter

    def record_energy(self, day: datetime.date, wh: int, child_id: str | None = None) -> None:
        """Test set-up: the meter (or a strip outlet's) measured WH on DAY."""
        with self.lock:
            self.energy_days.setdefault(child_id, {})[day] = wh

    def record_hourly(self, hour: datetime.datetime, wh: int, child_id: str | None = None) -> None:
        """Test set-up: the meter (or a strip outlet's) measured WH in the hour starting at HOUR
        (naive, local); that day's figure grows by WH too."""
        hour = hour.replace(minute=0, second=0, microsecond=0)
        with self.lock:
            hours = self.energy_hours.setdefault(child_id, {})
            days = self.energy_days.setdefault(child_id, {})
            days[hour.date()] = days.get(hour.date(), 0) + wh - hours.get(hour, 0)
            hours[hour] = wh

    def reset_meter(self, child_id: str | None = None) -> None:
        """Test set-up: the meter (or a strip outlet's) is reset: its history goes, today and this
        month read 0."""
        with self.lock:
            self.energy_days[child_id] = {}
            self.energy_hours[child_id] = {}

    def keep_only(self, *, days: int | None = None, months: int | None = None, hour_days: int | None = None) -> None:
        """Test set-up: the meters answer only their last DAYS days and MONTHS months from now on,
        and the hours of their last HOUR_DAYS days (None: as many as DAYS)."""
        with self.lock:
            self.kept_days, self.kept_months, self.kept_hour_days = days, months, hour_days

    def _energy_usage(self, child_id: str | None, usage: dict) -> dict:
        days = self.energy_days.get(child_id)
        if days is None:  # neither recorded nor reset: the fixture's figures
            return copy.deepcopy(usage)
        today = datetime.date.today()
        return {**usage, "today_energy": days.get(today, 0),
                "month_energy": sum(wh for d, wh in days.items() if (d.year, d.month) == (today.year, today.month))}

    def _energy_data(self, child_id: str | None, params: dict) -> dict:
        start, end, interval = (params.get(k) for k in ("start_timestamp", "end_timestamp", "interval"))
        if not (_is_int(start) and _is_int(end) and start >= 0) or interval not in (HOUR, DAY, MONTH):
            return {"error_code": PARAMS_ERROR}
        asked = datetime.date.fromtimestamp(start)
        days = self.energy_days.get(child_id, {})
        today = datetime.date.today()
        if interval == HOUR:
            span = (datetime.date.fromtimestamp(end) - asked).days + 1
            if not 1 <= span <= HOURLY_DAYS:
                return {"error_code": PARAMS_ERROR}
            hours = self.energy_hours.get(child_id, {})
            kept = self.kept_hour_days if self.kept_hour_days is not None else self.kept_days
            midnight = datetime.datetime(asked.year, asked.month, asked.day)
            stamps = [midnight + datetime.timedelta(hours=n) for n in range(24 * span)]
            data = [hours.get(h, 0) if kept is None or (today - h.date()).days < kept else 0 for h in stamps]
        elif interval == DAY:
            first = datetime.date(asked.year, 3 * ((asked.month - 1) // 3) + 1, 1)
            after = datetime.date(first.year + (first.month == 10), (first.month + 2) % 12 + 1, 1)
            dates = [first + datetime.timedelta(n) for n in range((after - first).days)]
            data = [days.get(d, 0) if self.kept_days is None or (today - d).days < self.kept_days else 0 for d in dates]
        else:
            data = [sum(wh for d, wh in days.items() if (d.year, d.month) == (asked.year, m))
                    if self.kept_months is None or (today.year - asked.year) * 12 + today.month - m < self.kept_months
                    else 0 for m in range(1, 13)]
        now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        return {"error_code": 0, "result": {"local_time": now, "data": data, "start_timestamp": start,
                                            "end_timestamp": end, "interval": interval}}

    # ---------------------------------------------------------------- test hooks

    def remove_method(self, method: str, child_id: str | None = None) -> None:
        """Test set-up: METHOD answers -1002 from now on, on CHILD_ID, or (None) on the device
        and every outlet; a ``get_`` method of a group removes the group (see above)."""
        with self.lock:
            for key in ([None, *self.children] if child_id is None else [child_id]):
                self.removed.setdefault(key, set()).update(_GROUPS.get(method, (method,)))

    @property
    def time_scale(self) -> float:
        """Timer seconds per real second (default 1.0); countdowns run on this clock."""
        with self.lock:
            return self._timer_clock.scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        with self.lock:
            self._timer_clock.scale = value

    def advance_timers(self, seconds: float) -> None:
        """Test set-up: let SECONDS of timer time pass at once (due countdowns fire)."""
        with self.lock:
            self._timer_clock.advance(seconds)
            self._fire_due_timers()

    def rules(self, kind: str = "schedule", child_id: str | None = None) -> list[dict]:
        """The ``"schedule"`` or ``"countdown"`` rules of the device or an outlet, as listed."""
        with self.lock:
            self._fire_due_timers()
            if kind == "countdown" and child_id in self._countdowns:
                return self._render_countdowns(child_id)
            if kind == "schedule" and child_id in self._schedules:
                return copy.deepcopy(self._schedules[child_id]["rules"])
            raise ValueError(f"no {kind} rules on {child_id or self.model}")

    # ---------------------------------------------------------------- the clock

    def device_now(self) -> datetime.datetime:
        """The device's clock now, aware, at its ``time_diff``."""
        with self.lock:
            zone = datetime.timezone(datetime.timedelta(minutes=self.time_diff))
            return datetime.datetime.fromtimestamp(time.time() + self.clock_skew, zone)

    def wall_clock(self) -> datetime.datetime:
        """The device's local time (naive)."""
        return self.device_now().replace(tzinfo=None)

    def set_clock(self, when: datetime.datetime | float) -> None:
        """Test set-up: set the device's clock to WHEN (an aware datetime, or unix seconds)."""
        with self.lock:
            if isinstance(when, datetime.datetime):
                if when.tzinfo is None:
                    raise ValueError("set_clock needs an aware datetime")
                when = when.timestamp()
            self.clock_skew = float(when) - time.time()

    # ---------------------------------------------------------------- countdowns, schedules, clock

    def _rules_method(self, key: str | None, method: str, params: dict) -> dict | None:
        """Answer a countdown / schedule / clock method KEY has, else None (not one of those)."""
        recorded = self.responses if key is None else self.child_responses.get(key, {})
        if method in _GROUPS["get_device_time"] and "get_device_time" in recorded:
            return self._get_device_time() if method == "get_device_time" else self._set_device_time(params)
        if method in _GROUPS["get_countdown_rules"] and key in self._countdowns:
            return getattr(self, "_" + method)(self._countdowns[key], key, params)
        if method in _GROUPS["get_schedule_rules"] and key in self._schedules:
            return getattr(self, "_" + method)(self._schedules[key], params)
        return None

    def _get_device_time(self) -> dict:
        return {"error_code": 0, "result": {"timestamp": int(time.time() + self.clock_skew),
                                            "time_diff": self.time_diff, "region": self.region}}

    def _set_device_time(self, params: dict) -> dict:
        stamp, diff, region = params.get("timestamp"), params.get("time_diff"), params.get("region", self.region)
        if not (_is_int(stamp) and stamp >= 0 and _is_int(diff) and -720 <= diff <= 840
                and isinstance(region, str)):
            return {"error_code": PARAMS_ERROR}
        self.clock_skew = stamp - time.time()
        self.time_diff, self.region = diff, region
        return {"error_code": 0}

    @staticmethod
    def _valid_states(states: Any) -> bool:
        return (isinstance(states, dict) and isinstance(states.get("on"), bool)
                and ("brightness" not in states
                     or (_is_int(states["brightness"]) and 1 <= states["brightness"] <= 100)))

    def _valid_countdown(self, rule: dict) -> bool:
        delay = rule.get("delay")
        return (_is_int(delay) and 1 <= delay <= _MAX_COUNTDOWN_DELAY
                and self._valid_states(rule.get("desired_states"))
                and isinstance(rule.get("enable"), bool))

    def _valid_schedule(self, rule: dict) -> bool:
        def int_in(key: str, lo: int, hi: float) -> bool:
            return _is_int(rule.get(key)) and lo <= rule[key] <= hi

        if not (int_in("s_min", 0, 1439) and rule.get("s_type") in _S_TYPES
                and int_in("week_day", 0, 127) and self._valid_states(rule.get("desired_states"))
                and isinstance(rule.get("enable"), bool) and rule.get("mode") in ("repeat", "once")):
            return False
        optional = {"time_offset": (-1439, 1439), "e_min": (0, 1439), "day": (0, 31),
                    "month": (0, 12), "year": (0, math.inf)}
        if any(key in rule and not int_in(key, lo, hi) for key, (lo, hi) in optional.items()):
            return False
        if "e_type" in rule and rule["e_type"] not in _S_TYPES:
            return False
        return "e_action" not in rule or isinstance(rule["e_action"], str)

    def _render_countdowns(self, key: str | None) -> list[dict]:
        state, now = self._countdowns[key], self._timer_clock.now()
        return [{**copy.deepcopy(rule),
                 "remain": math.ceil(max(0.0, state["due"][rule["id"]] - now)) if rule["id"] in state["due"] else 0}
                for rule in state["rules"]]

    def _fire_due_timers(self) -> None:
        """Fire every enabled countdown whose delay has passed (timer time); call under the lock."""
        now = self._timer_clock.now()
        for key, state in self._countdowns.items():
            for rule_id, when in sorted(state["due"].items(), key=lambda item: item[1]):
                if when > now:
                    continue
                del state["due"][rule_id]
                target = self.info if key is None else self.children[key]
                for rule in state["rules"]:
                    if rule["id"] != rule_id:
                        continue
                    rule["enable"] = False
                    wanted = rule.get("desired_states", {})
                    if "on" in wanted and "device_on" in target:
                        target["device_on"] = bool(wanted["on"])
                    if "brightness" in wanted and "brightness" in target:
                        target["brightness"] = wanted["brightness"]

    @staticmethod
    def _removal(rules: list[dict], params: dict) -> list[str] | None:
        """The ids ``remove_*_rules`` PARAMS name (all of them for remove_all), None if invalid."""
        if params.get("remove_all") is True:
            return [r["id"] for r in rules]
        wanted = params.get("rule_list")
        known = {r["id"] for r in rules}
        if not isinstance(wanted, list) or not wanted or not all(
                isinstance(w, dict) and w.get("id") in known for w in wanted):
            return None
        return [w["id"] for w in wanted]

    def _get_countdown_rules(self, state: dict, key: str | None, params: dict) -> dict:
        return {"error_code": 0, "result": {
            "countdown_rule_max_count": state["max"],
            "enable": any(r.get("enable") for r in state["rules"]),
            "rule_list": self._render_countdowns(key)}}

    def _start_countdown(self, state: dict, rule: dict) -> None:
        state["due"].pop(rule["id"], None)
        if rule["enable"]:
            state["due"][rule["id"]] = self._timer_clock.now() + rule["delay"]

    def _add_countdown_rule(self, state: dict, key: str | None, params: dict) -> dict:
        rule = {k: copy.deepcopy(v) for k, v in params.items() if k not in ("id", "remain")}
        if not self._valid_countdown(rule):
            return {"error_code": PARAMS_ERROR}
        if state["due"]:
            return {"error_code": COUNTDOWN_CONFLICT_ERROR}
        rule["id"] = "C1"
        state["rules"] = [rule]
        self._start_countdown(state, rule)
        return {"error_code": 0, "result": {"id": rule["id"]}}

    def _edit_countdown_rule(self, state: dict, key: str | None, params: dict) -> dict:
        for i, old in enumerate(state["rules"]):
            if old["id"] == params.get("id"):
                rule = {**old, **{k: copy.deepcopy(v) for k, v in params.items() if k != "remain"}}
                if not self._valid_countdown(rule):
                    break
                state["rules"][i] = rule
                self._start_countdown(state, rule)
                return {"error_code": 0}
        return {"error_code": PARAMS_ERROR}

    def _remove_countdown_rules(self, state: dict, key: str | None, params: dict) -> dict:
        ids = self._removal(state["rules"], params)
        if ids is None:
            return {"error_code": PARAMS_ERROR}
        state["rules"] = [r for r in state["rules"] if r["id"] not in ids]
        for rule_id in ids:
            state["due"].pop(rule_id, None)
        return {"error_code": 0}

    def _get_schedule_rules(self, state: dict, params: dict) -> dict:
        start = params.get("start_index", 0)
        if not _is_int(start) or start < 0:
            return {"error_code": PARAMS_ERROR}
        rules = state["rules"]
        return {"error_code": 0, "result": {
            "enable": any(r.get("enable") for r in rules),
            "rule_list": copy.deepcopy(rules[start:start + _SCHEDULE_PAGE]),
            "schedule_rule_max_count": state["max"], "start_index": start, "sum": len(rules)}}

    def _add_schedule_rule(self, state: dict, params: dict) -> dict:
        rule = {k: copy.deepcopy(v) for k, v in params.items() if k != "id"}
        if not self._valid_schedule(rule):
            return {"error_code": PARAMS_ERROR}
        if len(state["rules"]) >= state["max"]:
            return {"error_code": SCHEDULE_FULL_ERROR}
        numbers = [int(r["id"][1:]) for r in state["rules"]
                   if isinstance(r.get("id"), str) and r["id"][:1] == "S" and r["id"][1:].isdigit()]
        rule["id"] = f"S{max(numbers, default=0) + 1}"
        state["rules"].append(rule)
        return {"error_code": 0, "result": {"id": rule["id"]}}

    def _edit_schedule_rule(self, state: dict, params: dict) -> dict:
        for i, old in enumerate(state["rules"]):
            if old["id"] == params.get("id"):
                rule = {**old, **copy.deepcopy(params)}
                if not self._valid_schedule(rule):
                    break
                state["rules"][i] = rule
                return {"error_code": 0}
        return {"error_code": PARAMS_ERROR}

    def _remove_schedule_rules(self, state: dict, params: dict) -> dict:
        ids = self._removal(state["rules"], params)
        if ids is None:
            return {"error_code": PARAMS_ERROR}
        state["rules"] = [r for r in state["rules"] if r["id"] not in ids]
        return {"error_code": 0}

    def led_on(self) -> bool | None:
        led = self.responses.get("get_led_info")
        return None if led is None else led.get("led_rule") != "never"

    def __repr__(self) -> str:
        return f"<SmartDevice {self.source} {self.nickname!r} on={self.is_on()}>"
