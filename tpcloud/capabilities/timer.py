"""The device's own countdown timer: "switch back in 45 minutes", kept by the device, so it fires
while the phone sleeps or the cron host is down.

IOT devices keep it in the ``count_down`` module (``get_rules``, ``add_rule`` with ``delay``
seconds and ``act`` 1/0, ``delete_all_rules``; one rule at most, per outlet on strips through
``context``: softScheck's command list, tplink-smarthome-api's ``Timer``). Kasa bulbs have no
such module as far as any peer knows, and say so. SMART devices use ``get_countdown_rules``,
``add_countdown_rule`` (``delay``, ``desired_states.on``, ``enable``) and
``remove_countdown_rules`` with ``remove_all``; a P110 takes one rule and refuses a second
while one is pending, so a new timer clears the old one first (mihai-dinculescu/tapo, run on a
P110), and takes at most 24 h (the Tapo app's limit, per tapo).

Arming goes: clear, add, then switch. The device refusing the timer therefore leaves the power
as it was. That a pending countdown survives the switch that follows it is a guess (see the
README's verification table).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from tpcloud.capabilities import Send, absent, addressed, lacking
from tpcloud.devices import Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import DeviceError, ProtocolError, UsageError

WHAT = "countdown timer"
IOT_MODULE = "count_down"
# The longest countdown the Tapo app sets, and the devices take (mihai-dinculescu/tapo).
SMART_MAX_SECONDS = 24 * 3600
# The name tpcloud gives an IOT countdown rule (the device shows it in the Kasa app).
RULE_NAME = "tpcloud"


@dataclass(frozen=True)
class Countdown:
    """A pending countdown: in REMAINING seconds (None where the device does not say) of DELAY,
    the device switches ON (True) or off."""

    on: bool
    delay: int
    remaining: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"action": "on" if self.on else "off", "delay": self.delay, "remaining": self.remaining}


@dataclass(frozen=True)
class TimerState:
    """What `tpcloud timer` shows: the pending countdown, or None; CLEARED when it was just cleared."""

    pending: Countdown | None
    cleared: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"timer": None if self.pending is None else self.pending.to_dict(), "cleared": self.cleared}


class Timer(ABC):
    """One dialect's way to the countdown."""

    async def read(self, send: Send) -> Countdown | None:
        """The pending countdown: the first enabled rule not spent yet (a spent one stays listed
        with ``remain`` 0)."""
        for rule in await self._rules(send):
            on = self._action(rule) if isinstance(rule, dict) else None
            if on is None or not rule.get("enable") or _int(rule.get("delay")) is None:
                continue
            remaining = _int(rule.get("remain"))
            if remaining == 0:
                continue  # spent: it fired already
            return Countdown(on=on, delay=rule["delay"], remaining=remaining)
        return None

    def check(self, seconds: int) -> None:
        """Refuse, before anything is sent, a countdown the device is known not to take."""

    @abstractmethod
    async def _rules(self, send: Send) -> list[Any]: ...

    @abstractmethod
    def _action(self, rule: dict[str, Any]) -> bool | None:
        """Whether RULE switches on (or off); None for a rule that says neither."""

    @abstractmethod
    async def clear(self, send: Send) -> None: ...

    @abstractmethod
    async def add(self, send: Send, seconds: int, on: bool) -> None: ...


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class IotTimer(Timer):
    async def _rules(self, send: Send) -> list[Any]:
        with lacking(WHAT):
            reply = iot.check(await send({IOT_MODULE: {"get_rules": {}}}))
        rules = reply.get(IOT_MODULE, {}).get("get_rules", {}).get("rule_list")
        if not isinstance(rules, list):
            raise ProtocolError("the device's count_down.get_rules has no rule_list")
        return rules

    def _action(self, rule: dict[str, Any]) -> bool | None:
        return bool(rule.get("act"))

    async def clear(self, send: Send) -> None:
        with lacking(WHAT):
            iot.check(await send({IOT_MODULE: {"delete_all_rules": {}}}))

    async def add(self, send: Send, seconds: int, on: bool) -> None:
        rule = {"enable": 1, "delay": seconds, "act": int(on), "name": RULE_NAME}
        with lacking(WHAT):
            iot.check(await send({IOT_MODULE: {"add_rule": rule}}))


class SmartTimer(Timer):
    async def _rules(self, send: Send) -> list[Any]:
        with lacking(WHAT):
            result = smart.check(await send({"method": "get_countdown_rules", "params": {"start_index": 0}}))
        rules = result.get("rule_list") if isinstance(result, dict) else None
        if not isinstance(rules, list):
            raise ProtocolError("the device's get_countdown_rules has no rule_list")
        return rules

    def _action(self, rule: dict[str, Any]) -> bool | None:
        states = rule.get("desired_states")
        return bool(states.get("on")) if isinstance(states, dict) else None

    def check(self, seconds: int) -> None:
        if seconds > SMART_MAX_SECONDS:
            raise UsageError("a Tapo device counts down 24h at most")

    async def clear(self, send: Send) -> None:
        with lacking(WHAT):
            smart.check(await send({"method": "remove_countdown_rules", "params": {"remove_all": True}}))

    async def add(self, send: Send, seconds: int, on: bool) -> None:
        params = {"delay": seconds, "desired_states": {"on": on}, "enable": True}
        with lacking(WHAT):
            smart.check(await send({"method": "add_countdown_rule", "params": params}))


IMPLEMENTATIONS: dict[str, Timer] = {"iot": IotTimer(), "smart": SmartTimer()}


def _timer(target: Target) -> Timer:
    if target.outlet is None and target.device.outlets:
        raise UsageError(f'a strip keeps a timer per outlet: name one, such as "{target.device.outlets[0].alias}"')
    return IMPLEMENTATIONS[target.device.dialect]


def exchange(clear: bool = False):
    """What `tpcloud timer` runs: show the pending countdown, or clear it (CLEAR)."""

    async def run(target: Target, send: Send) -> TimerState:
        timer, send = _timer(target), addressed(target, send)
        if clear:
            await timer.clear(send)
            return TimerState(None, cleared=True)
        return TimerState(await timer.read(send))

    return run


def arm(seconds: int, on: bool):
    """The exchange that sets TARGET to switch ON (or off) in SECONDS, replacing any pending timer."""

    async def run(target: Target, send: Send) -> Countdown:
        timer, send = _timer(target), addressed(target, send)
        timer.check(seconds)
        await timer.clear(send)
        await timer.add(send, seconds, on)
        return Countdown(on=on, delay=seconds, remaining=seconds)

    return run


async def pending(target: Target, send: Send) -> Countdown | None:
    """The exchange `tpcloud state` adds: the pending countdown, or None where there is none or
    the device has no timer at all, or one whose rules tpcloud cannot read (the state matters more)."""
    try:
        return await IMPLEMENTATIONS[target.device.dialect].read(addressed(target, send))
    except ProtocolError:
        return None
    except DeviceError as exc:
        if absent(exc):
            return None
        raise
