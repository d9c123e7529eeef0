"""Schedules the device keeps: "on at sunset-15m daily", "off at 23:30 on weekdays".

IOT devices keep rules in ``schedule`` (bulbs ``smartlife.iot.common.schedule``), per outlet on
strips (``context``): ``get_rules``, ``add_rule``, ``edit_rule``, ``delete_rule``,
``delete_all_rules``, and ``set_overall_enable``, a switch for the whole module that fixtures
record off on devices with no rules (softScheck's command list; tplink-smarthome-api). A rule
says when (``stime_opt`` 0 = at ``smin`` minutes, 1 = sunrise, 2 = sunset, offset ``soffset``),
on which days (``wday``, seven flags from Sunday), and what (``sact`` 1 on, 0 off; bulbs
``sact`` 2 with the light state in ``s_light``).

SMART devices use ``get_schedule_rules`` (paged by ``start_index``, ``sum`` the total),
``add_schedule_rule``, ``edit_schedule_rule`` and ``remove_schedule_rules``; a rule as the P110
and EP40M record it: ``s_type`` normal/sunrise/sunset, ``s_min``, ``time_offset``,
``week_day`` (a bit mask) and ``desired_states``.

Guesses, listed in the README's verification table: the SMART ``week_day`` bit order (bit 0 =
Sunday, as IOT's ``wday``); ``soffset`` in minutes; the SMART edit/remove method names and
parameters; ``brightness`` in ``desired_states``.
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any

from tpcloud.capabilities import Send, addressed, lacking
from tpcloud.devices import Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import DeviceError, ProtocolError, UsageError
from tpcloud.timespec import DAY_NAMES, When, days_text

WHAT = "schedule"
IOT_MODULE, IOT_BULB_MODULE = "schedule", "smartlife.iot.common.schedule"
RULE_NAME = "tpcloud"
# How many rules tpcloud reads from a SMART device at most (its schedule_rule_max_count is 32).
_SMART_MAX_PAGES = 20


@dataclass(frozen=True)
class Rule:
    """One schedule rule, whatever the dialect: at WHEN on DAYS, switch ON (or off), lights to
    BRIGHTNESS; ONCE rules fire on their next day only. ID is the device's (None before it has one)."""

    on: bool
    when: When
    days: frozenset[int]
    brightness: int | None = None
    enabled: bool = True
    once: bool = False
    id: str | None = None

    def same(self, other: "Rule") -> bool:
        """Whether OTHER does the same (whatever its id)."""
        return replace(self, id=None) == replace(other, id=None)

    def __str__(self) -> str:
        what = ("on" if self.on else "off") + (f" {self.brightness}%" if self.brightness is not None else "")
        days = "once" if self.once else days_text(self.days)
        return f"{what} at {self.when} {days}" + ("" if self.enabled else " (disabled)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "action": "on" if self.on else "off", "at": str(self.when),
            "days": [DAY_NAMES[d] for d in sorted(self.days)], "brightness": self.brightness,
            "enabled": self.enabled, "once": self.once,
        }


def rule_from(action: str, when: When, days: frozenset[int], *, brightness: int | None = None,
              enabled: bool = True) -> Rule:
    """A Rule from what a person wrote (the command line, a schedule file), checked: ACTION on or
    off, BRIGHTNESS 1-100 and only with on."""
    if action not in ("on", "off"):
        raise UsageError(f"a rule switches on or off, not {action!r}")
    if brightness is not None and (isinstance(brightness, bool) or not isinstance(brightness, int) or not 1 <= brightness <= 100):
        raise UsageError(f"a brightness is 1-100 %, not {brightness!r}")
    if brightness is not None and action == "off":
        raise UsageError("a brightness goes with on")
    return Rule(on=action == "on", when=when, days=days, brightness=brightness, enabled=enabled)


@dataclass(frozen=True)
class Listed:
    """A rule as the device holds it: RAW, its own form, and RULE, what tpcloud reads in it (None
    for a rule of a kind tpcloud does not know, which it lists and can remove, never edits)."""

    raw: dict[str, Any]
    rule: Rule | None

    @property
    def id(self) -> str:
        return str(self.raw.get("id", ""))

    def to_dict(self) -> dict[str, Any]:
        return self.rule.to_dict() if self.rule is not None else {"id": self.id, "unknown": self.raw}


@dataclass(frozen=True)
class Rules:
    """A device's rules, and whether its schedules are switched on at all (IOT's overall switch)."""

    listed: list[Listed]
    active: bool = True

    def find(self, wanted: str) -> Listed:
        """The rule whose id is WANTED or starts with it (any case): ids of IOT rules are 32 digits."""
        key = wanted.strip().upper()
        exact = [r for r in self.listed if r.id.upper() == key]
        found = exact or [r for r in self.listed if key and r.id.upper().startswith(key)]
        if len(found) == 1:
            return found[0]
        if found:
            raise UsageError(f'"{wanted}" is the start of {len(found)} rule ids: give more of it')
        raise UsageError(f'no rule has the id "{wanted}"', hint="`tpcloud schedule NAME list` shows them")


class Schedules(ABC):
    """One dialect's way to the schedule rules of a device or outlet."""

    @abstractmethod
    async def read(self, send: Send) -> Rules: ...

    @abstractmethod
    async def add(self, send: Send, rule: Rule, today: datetime.date) -> str: ...

    @abstractmethod
    async def remove(self, send: Send, listed: Listed) -> None: ...

    @abstractmethod
    async def set_enabled(self, send: Send, listed: Listed, enabled: bool) -> None: ...

    @abstractmethod
    async def clear(self, send: Send) -> None: ...


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _refused(rule: Rule, exc: DeviceError) -> DeviceError:
    """The device's refusal of RULE (a bad time, too many rules), naming the rule."""
    return DeviceError(f'the device refused the rule "{rule}": {exc.message}', code=exc.code)


class IotSchedules(Schedules):
    def __init__(self, bulb: bool) -> None:
        self.module = IOT_BULB_MODULE if bulb else IOT_MODULE
        self.bulb = bulb

    async def _call(self, send: Send, methods: dict[str, Any]) -> dict[str, Any]:
        with lacking(WHAT):
            reply = iot.check(await send({self.module: methods}))
        body = reply.get(self.module)
        return body if isinstance(body, dict) else {}

    async def read(self, send: Send) -> Rules:
        body = (await self._call(send, {"get_rules": {}})).get("get_rules")
        rules = body.get("rule_list") if isinstance(body, dict) else None
        if not isinstance(rules, list):
            raise ProtocolError(f"the device's {self.module}.get_rules has no rule_list")
        listed = [Listed(r, iot_rule(r)) for r in rules if isinstance(r, dict)]
        return Rules(listed, active=bool(body.get("enable", 1)))  # type: ignore[union-attr]

    async def add(self, send: Send, rule: Rule, today: datetime.date) -> str:
        if rule.brightness is not None and not self.bulb:
            raise UsageError("a brightness in a schedule is for bulbs: a Kasa dimmer's rule form is not known")
        try:
            body = await self._call(send, {"add_rule": iot_form(rule, bulb=self.bulb), "set_overall_enable": {"enable": 1}})
        except DeviceError as exc:
            raise _refused(rule, exc) from None
        added = body.get("add_rule")
        return str(added.get("id", "")) if isinstance(added, dict) else ""

    async def remove(self, send: Send, listed: Listed) -> None:
        await self._call(send, {"delete_rule": {"id": listed.id}})

    async def set_enabled(self, send: Send, listed: Listed, enabled: bool) -> None:
        methods: dict[str, Any] = {"edit_rule": {**listed.raw, "enable": int(enabled)}}
        if enabled:
            methods["set_overall_enable"] = {"enable": 1}
        await self._call(send, methods)

    async def clear(self, send: Send) -> None:
        await self._call(send, {"delete_all_rules": {}})


# IOT ``wday`` flags run from Sunday; tpcloud's day numbers from Monday (0) to Sunday (6).
_IOT_WDAY_ORDER = (6, 0, 1, 2, 3, 4, 5)


def iot_form(rule: Rule, *, bulb: bool) -> dict[str, Any]:
    """RULE as an IOT ``add_rule`` takes it (the fields softScheck's command list sends)."""
    form: dict[str, Any] = {
        "stime_opt": 0 if rule.when.sun is None else 1 + (rule.when.sun == "sunset"),
        "wday": [int(day in rule.days) for day in _IOT_WDAY_ORDER],
        "smin": rule.when.minute or 0,
        "soffset": rule.when.offset,
        "enable": int(rule.enabled),
        "repeat": int(not rule.once),
        "etime_opt": -1, "emin": 0, "eact": -1,
        "name": RULE_NAME,
        "year": 0, "month": 0, "day": 0, "longitude": 0, "latitude": 0, "force": 0,
        "sact": int(rule.on),
    }
    if bulb:
        light = {"on_off": int(rule.on)}
        if rule.brightness is not None:
            light["brightness"] = rule.brightness
        form.update(sact=2, s_light=light)
    return form


def iot_rule(raw: dict[str, Any]) -> Rule | None:
    """What RAW (an IOT rule) does, or None for a kind tpcloud does not read."""
    option, wday, action = raw.get("stime_opt"), raw.get("wday"), raw.get("sact")
    if option not in (0, 1, 2) or not isinstance(wday, list) or len(wday) != 7:
        return None
    when = When(minute=_int(raw.get("smin"))) if option == 0 else When(
        sun="sunrise" if option == 1 else "sunset", offset=_int(raw.get("soffset")))
    days = frozenset(_IOT_WDAY_ORDER[i] for i, flag in enumerate(wday) if flag)
    brightness = None
    if action in (0, 1):
        on = bool(action)
    elif action == 2 and isinstance(raw.get("s_light"), dict):
        on = bool(raw["s_light"].get("on_off", 1))
        brightness = raw["s_light"].get("brightness") if isinstance(raw["s_light"].get("brightness"), int) else None
    else:
        return None
    return Rule(on=on, when=when, days=days, brightness=brightness, enabled=bool(raw.get("enable")),
                once=not raw.get("repeat", 1), id=str(raw.get("id", "")) or None)


class SmartSchedules(Schedules):
    async def _call(self, send: Send, method: str, params: dict[str, Any]) -> Any:
        with lacking(WHAT):
            return smart.check(await send({"method": method, "params": params}))

    async def read(self, send: Send) -> Rules:
        rules: list[dict[str, Any]] = []
        active = False
        for _ in range(_SMART_MAX_PAGES):
            page = await self._call(send, "get_schedule_rules", {"start_index": len(rules)})
            listed = page.get("rule_list") if isinstance(page, dict) else None
            if not isinstance(listed, list):
                raise ProtocolError("the device's get_schedule_rules has no rule_list")
            rules += [r for r in listed if isinstance(r, dict)]
            active = bool(page.get("enable", True)) or bool(rules)
            if not listed or len(rules) >= _int(page.get("sum"), len(rules)):
                break
        return Rules([Listed(r, smart_rule(r)) for r in rules], active=active)

    async def add(self, send: Send, rule: Rule, today: datetime.date) -> str:
        try:
            result = await self._call(send, "add_schedule_rule", smart_form(rule, today))
        except DeviceError as exc:
            raise _refused(rule, exc) from None
        return str(result.get("id", "")) if isinstance(result, dict) else ""

    async def remove(self, send: Send, listed: Listed) -> None:
        await self._call(send, "remove_schedule_rules", {"rule_list": [{"id": listed.id}]})

    async def set_enabled(self, send: Send, listed: Listed, enabled: bool) -> None:
        await self._call(send, "edit_schedule_rule", {**listed.raw, "enable": enabled})

    async def clear(self, send: Send) -> None:
        await self._call(send, "remove_schedule_rules", {"remove_all": True})


def _week_bit(day: int) -> int:
    """The ``week_day`` bit of tpcloud's DAY (0 = Monday), counting from Sunday as IOT does (a guess)."""
    return 1 << ((day + 1) % 7)


def smart_form(rule: Rule, today: datetime.date) -> dict[str, Any]:
    """RULE as ``add_schedule_rule`` takes it, in the form the P110 and EP40M record their rules."""
    states: dict[str, Any] = {"on": rule.on}
    if rule.brightness is not None:
        states["brightness"] = rule.brightness
    return {
        "desired_states": states,
        "enable": rule.enabled,
        "mode": "once" if rule.once else "repeat",
        "s_type": rule.when.sun or "normal",
        "s_min": rule.when.minute or 0,
        "time_offset": rule.when.offset,
        "week_day": sum(_week_bit(day) for day in rule.days),
        "e_type": "normal", "e_action": "none", "e_min": 0,
        "year": today.year, "month": today.month, "day": today.day,
    }


def smart_rule(raw: dict[str, Any]) -> Rule | None:
    """What RAW (a SMART rule) does, or None for a kind tpcloud does not read."""
    kind, states, mask = raw.get("s_type"), raw.get("desired_states"), raw.get("week_day")
    if kind not in ("normal", "sunrise", "sunset") or not isinstance(states, dict) or not isinstance(mask, int):
        return None
    when = When(minute=_int(raw.get("s_min"))) if kind == "normal" else When(sun=kind, offset=_int(raw.get("time_offset")))
    brightness = states.get("brightness") if isinstance(states.get("brightness"), int) else None
    return Rule(on=bool(states.get("on", True)), when=when, days=frozenset(d for d in range(7) if mask & _week_bit(d)),
                brightness=brightness, enabled=bool(raw.get("enable")), once=raw.get("mode") == "once",
                id=str(raw.get("id", "")) or None)


def schedules_of(target: Target) -> Schedules:
    """The way to TARGET's rules; a strip named whole has none of its own."""
    device = target.device
    if target.outlet is None and device.outlets:
        raise UsageError(f'a strip keeps schedules per outlet: name one, such as "{device.outlets[0].alias}"')
    if device.dialect == "smart":
        return SmartSchedules()
    return IotSchedules(bulb=device.is_bulb)


@dataclass(frozen=True)
class Change:
    """What a schedule command did (or, DRY_RUN, would do) to one device: the rules ADDED, REMOVED
    and SWITCHED (enabled or disabled), and the RULES it holds afterwards; ACTIVE is false when
    the device's schedules are switched off as a whole."""

    rules: list[Listed]
    added: list[Rule] = field(default_factory=list)
    removed: list[Listed] = field(default_factory=list)
    switched: list[Rule] = field(default_factory=list)
    active: bool = True
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.switched)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [r.to_dict() for r in self.rules],
            "added": [r.to_dict() for r in self.added],
            "removed": [r.to_dict() for r in self.removed],
            "switched": [r.to_dict() for r in self.switched],
            "schedules_active": self.active,
            "dry_run": self.dry_run,
        }


def listing():
    """What `schedule NAME list` runs."""

    async def run(target: Target, send: Send) -> Change:
        rules = await schedules_of(target).read(addressed(target, send))
        return Change(rules.listed, active=rules.active)

    return run


def adding(rule: Rule, today: datetime.date):
    """What `schedule NAME add` runs: add RULE and read the rules back."""

    async def run(target: Target, send: Send) -> Change:
        schedules, send = schedules_of(target), addressed(target, send)
        new_id = await schedules.add(send, rule, today)
        rules = await schedules.read(send)
        return Change(rules.listed, added=[replace(rule, id=new_id or None)], active=rules.active)

    return run


def editing(verb: str, rule_id: str | None = None):
    """What `schedule NAME rm ID | enable ID | disable ID | clear` runs."""

    async def run(target: Target, send: Send) -> Change:
        schedules, send = schedules_of(target), addressed(target, send)
        before = await schedules.read(send)
        if verb == "clear":
            if before.listed:
                await schedules.clear(send)
            gone = before.listed
        else:
            listed = before.find(rule_id or "")
            if verb == "rm":
                await schedules.remove(send, listed)
            elif listed.rule is None:
                raise UsageError(f"rule {listed.id} is of a kind tpcloud does not edit; remove it, or change it in the app")
            else:
                await schedules.set_enabled(send, listed, verb == "enable")
            gone = [listed]
        after = await schedules.read(send)
        now = {r.id: r.rule for r in after.listed}
        switched = [rule for r in gone if (rule := now.get(r.id)) is not None]
        return Change(after.listed, removed=[r for r in gone if r.id not in now], switched=switched, active=after.active)

    return run


def applying(wanted: list[Rule], today: datetime.date, dry_run: bool):
    """What `schedule apply` runs for one device: make its rules WANTED (each as often as listed)
    and leave those that already match alone, so a second run changes nothing."""

    async def run(target: Target, send: Send) -> Change:
        schedules, send = schedules_of(target), addressed(target, send)
        before = await schedules.read(send)
        missing = list(wanted)
        extra: list[Listed] = []
        for listed in before.listed:
            match = next((i for i, rule in enumerate(missing) if listed.rule is not None and rule.same(listed.rule)), None)
            if match is None:
                extra.append(listed)
            else:
                missing.pop(match)
        if dry_run or not (missing or extra):
            return Change(before.listed, added=missing, removed=extra, active=before.active, dry_run=dry_run)
        if extra and len(extra) == len(before.listed):
            await schedules.clear(send)
        else:
            for listed in extra:
                await schedules.remove(send, listed)
        added = [replace(rule, id=await schedules.add(send, rule, today) or None) for rule in missing]
        after = await schedules.read(send)
        return Change(after.listed, added=added, removed=extra, active=after.active)

    return run
