"""Energy meters: the present reading (power, voltage, current), today and this month, and the
daily or monthly history, in W, V, A and kWh whatever units the device speaks.

IOT meters (``emeter``; bulbs ``smartlife.iot.common.emeter``) answer in one of two unit styles:
early firmware (HS110 v1) ``power``/``voltage``/``current``/``total`` in W/V/A/kWh and history
``energy`` in kWh; later firmware ``power_mw``/``voltage_mv``/``current_ma``/``total_wh`` and
``energy_wh``. One request asks for the reading and this month's and this year's history.
A strip such as the HS300 measures each outlet (``context``); the strip's own figures are the
sum of its outlets'.

SMART meters answer ``get_energy_usage`` (``current_power`` in mW, ``today_energy`` and
``month_energy`` in Wh; the P304M's outlets leave power out of it and answer it in W to
``get_current_power``) and, on some models, ``get_emeter_data`` (``voltage_mv``,
``current_ma``). Their history is ``get_energy_data``: a bare list of Wh figures, one per day
from the first day of a quarter (``interval`` 1440) or one per month from January (``interval``
43200); the device wants ``start_timestamp`` on that first day at local midnight, so the dates
are counted from there (tapo's ``EnergyDataInterval`` documents the rule; not checked on
hardware here).
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from tpcloud.capabilities import Send, absent, lacking
from tpcloud.devices import Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import DeviceError, ProtocolError, UsageError

WHAT = "energy meter"
DAILY, MONTHLY = "daily", "monthly"


@dataclass(frozen=True)
class Asked:
    """What `tpcloud energy` was asked for: the reading now, or the daily (per day of MONTH of
    YEAR) or monthly (per month of YEAR) history; None = this month or year."""

    daily: bool = False
    monthly: bool = False
    month: int | None = None
    year: int | None = None

    def check(self, today: datetime.date) -> None:
        """The checks that need no device: one period at most, --month and --year only with
        theirs, both in range (no year after TODAY's)."""
        if self.daily and self.monthly:
            raise UsageError("--daily and --monthly cannot be combined")
        if self.month is not None and not self.daily:
            raise UsageError("--month goes with --daily")
        if self.year is not None and not (self.daily or self.monthly):
            raise UsageError("--year goes with --daily or --monthly")
        if self.month is not None and not 1 <= self.month <= 12:
            raise UsageError(f"--month must be 1-12, not {self.month}")
        if self.year is not None and not 2000 <= self.year <= today.year:
            raise UsageError(f"--year must be 2000-{today.year}, not {self.year}")

    @property
    def period(self) -> str | None:
        """DAILY, MONTHLY, or None for the reading now."""
        return DAILY if self.daily else MONTHLY if self.monthly else None


@dataclass(frozen=True)
class Reading:
    """What a meter says now; None where the device does not measure it."""

    power_w: float
    voltage_v: float | None = None
    current_a: float | None = None
    today_kwh: float | None = None
    month_kwh: float | None = None
    total_kwh: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_outlets(cls, readings: list["Reading"]) -> "Reading":
        """A strip's reading: its outlets' power, current and energy added; their line voltage."""

        def total(field: str) -> float | None:
            values = [getattr(r, field) for r in readings]
            return None if None in values else sum(values)

        volts = [r.voltage_v for r in readings if r.voltage_v is not None]
        return cls(
            power_w=sum(r.power_w for r in readings), voltage_v=max(volts) if volts else None,
            current_a=total("current_a"), today_kwh=total("today_kwh"), month_kwh=total("month_kwh"),
            total_kwh=total("total_kwh"),
        )


@dataclass(frozen=True)
class History:
    """Energy per day of one month (``daily``) or per month of one year (``monthly``)."""

    period: str
    year: int
    month: int | None
    entries: tuple[tuple[str, float], ...]  # ("2025-06-01" or "2025-06", kWh), oldest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period, "year": self.year, "month": self.month,
            "entries": [{"date": label, "kwh": kwh} for label, kwh in self.entries],
        }

    def until(self, today: datetime.date) -> "History":
        """The entries up to TODAY: a SMART history lists the rest of its quarter or year as zeros."""
        now = today.isoformat()
        return History(self.period, self.year, self.month, tuple(e for e in self.entries if e[0] <= now[:len(e[0])]))

    @classmethod
    def of_outlets(cls, histories: list["History"]) -> "History":
        """A strip's history: its outlets' energy added, date by date."""
        sums: dict[str, float] = {}
        for history in histories:
            for label, kwh in history.entries:
                sums[label] = sums.get(label, 0.0) + kwh
        first = histories[0]
        return cls(first.period, first.year, first.month, tuple(sorted(sums.items())))


class Meter(ABC):
    """One dialect's way to a meter (of a device, or of one strip outlet)."""

    @abstractmethod
    async def reading(self, target: Target, send: Send, today: datetime.date) -> Reading: ...

    @abstractmethod
    async def history(self, target: Target, send: Send, period: str, year: int, month: int) -> History: ...


def _number(body: dict[str, Any], milli: str | None, plain: str | None = None) -> float | None:
    """BODY's value in base units, from MILLI (thousandths: mW, mV, mA, Wh) or else PLAIN."""
    for key, divisor in ((milli, 1000), (plain, 1)):
        value = body.get(key) if key else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value / divisor
    return None


def iot_realtime(body: dict[str, Any]) -> Reading:
    """An IOT ``get_realtime`` body, in either unit style."""
    power = _number(body, "power_mw", "power")
    if power is None:
        raise ProtocolError("the meter's reading has no power")
    return Reading(
        power_w=power, voltage_v=_number(body, "voltage_mv", "voltage"),
        current_a=_number(body, "current_ma", "current"), total_kwh=_number(body, "total_wh", "total"),
    )


def iot_entries(body: dict[str, Any], key: str) -> list[tuple[tuple[int, ...], float]]:
    """The ``day_list`` or ``month_list`` of an IOT stat reply: ((year, month[, day]), kWh)."""
    fields = ("year", "month", "day") if key == "day_list" else ("year", "month")
    listed = body.get(key)
    if not isinstance(listed, list):
        raise ProtocolError(f"the meter's history has no {key}")
    entries = []
    for entry in listed:
        kwh = _number(entry, "energy_wh", "energy") if isinstance(entry, dict) else None
        when = tuple(entry.get(f) for f in fields) if isinstance(entry, dict) else ()
        if kwh is not None and all(isinstance(v, int) for v in when):
            entries.append((when, kwh))
    return sorted(entries)


class IotMeter(Meter):
    async def _ask(self, target: Target, send: Send, methods: dict[str, Any]) -> dict[str, Any]:
        """The checked replies to METHODS of the device's meter module (addressed to its outlet)."""
        module = "smartlife.iot.common.emeter" if target.device.is_bulb else "emeter"
        with lacking(WHAT):
            reply = iot.check(await send(iot.for_outlet({module: methods}, target.outlet)))
        body = reply.get(module)
        if not isinstance(body, dict) or not all(isinstance(body.get(m), dict) for m in methods):
            raise ProtocolError(f"the device's reply has no {module} answer")
        return body

    async def reading(self, target: Target, send: Send, today: datetime.date) -> Reading:
        body = await self._ask(target, send, {
            "get_realtime": {}, "get_daystat": {"year": today.year, "month": today.month},
            "get_monthstat": {"year": today.year},
        })
        days = dict(iot_entries(body["get_daystat"], "day_list"))
        months = dict(iot_entries(body["get_monthstat"], "month_list"))
        now = iot_realtime(body["get_realtime"])
        return Reading(
            now.power_w, now.voltage_v, now.current_a, today_kwh=days.get((today.year, today.month, today.day), 0.0),
            month_kwh=months.get((today.year, today.month), 0.0), total_kwh=now.total_kwh,
        )

    async def history(self, target: Target, send: Send, period: str, year: int, month: int) -> History:
        method, params, key = (
            ("get_daystat", {"year": year, "month": month}, "day_list") if period == DAILY
            else ("get_monthstat", {"year": year}, "month_list")
        )
        body = await self._ask(target, send, {method: params})
        entries = tuple(("-".join(f"{v:02d}" for v in when), kwh) for when, kwh in iot_entries(body[method], key))
        return History(period, year, month if period == DAILY else None, entries)


def smart_history_data(result: dict[str, Any]) -> list[float]:
    """The ``data`` of a ``get_energy_data`` result: Wh figures, as kWh."""
    data = result.get("data")
    if not isinstance(data, list) or not all(
        isinstance(wh, (int, float)) and not isinstance(wh, bool) and wh >= 0 for wh in data
    ):
        raise ProtocolError("the device's energy history is not a list of Wh figures")
    return [wh / 1000 for wh in data]


# SMART devices without a meter method may answer it -1008 (params error) instead of -1002, as
# python-kasa's energy module allows (smart/modules/energy.py, _OPTIONAL_METHOD_ERRORS; an S515D).
_SMART_ABSENT = frozenset({-1008})


class SmartMeter(Meter):
    async def _ask(self, target: Target, send: Send, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request = {"method": method, **({"params": params} if params else {})}
        result = smart.check(await send(smart.for_outlet(request, target.outlet)))
        if not isinstance(result, dict):
            raise ProtocolError(f"the device's {method} has no result")
        return result

    async def reading(self, target: Target, send: Send, today: datetime.date) -> Reading:
        with lacking(WHAT, also=_SMART_ABSENT):
            usage = await self._ask(target, send, "get_energy_usage")
        try:  # voltage and current: only some models (KP125M, P110M) have get_emeter_data
            data = await self._ask(target, send, "get_emeter_data")
        except DeviceError as exc:
            if not absent(exc, _SMART_ABSENT):
                raise
            data = {}
        power = _number(usage, "current_power")
        if power is None:  # P304M outlets: get_energy_usage without power, get_current_power in W
            power = _number(await self._ask(target, send, "get_current_power"), None, "current_power")
        if power is None:
            raise ProtocolError("the device reports no current_power")
        return Reading(
            power_w=power, voltage_v=_number(data, "voltage_mv"), current_a=_number(data, "current_ma"),
            today_kwh=_number(usage, "today_energy"), month_kwh=_number(usage, "month_energy"),
        )

    async def history(self, target: Target, send: Send, period: str, year: int, month: int) -> History:
        first = datetime.date(year, 3 * ((month - 1) // 3) + 1 if period == DAILY else 1, 1)
        stamp = int(datetime.datetime(first.year, first.month, first.day).timestamp())
        params = {"start_timestamp": stamp, "end_timestamp": stamp, "interval": 1440 if period == DAILY else 43200}
        with lacking("energy history", also=_SMART_ABSENT):
            kwh = smart_history_data(await self._ask(target, send, "get_energy_data", params))
        if period == MONTHLY:
            return History(period, year, None, tuple((f"{year}-{n + 1:02d}", v) for n, v in enumerate(kwh[:12])))
        days = ((first + datetime.timedelta(days=n), v) for n, v in enumerate(kwh))
        entries = tuple((day.isoformat(), v) for day, v in days if (day.year, day.month) == (year, month))
        return History(period, year, month, entries)


IMPLEMENTATIONS: dict[str, Meter] = {"iot": IotMeter(), "smart": SmartMeter()}


def _parts(target: Target) -> list[Target]:
    """What is measured: the target, or each outlet of a strip named as a whole."""
    if target.outlet is None and target.device.outlets:
        return [Target(target.device, outlet) for outlet in target.device.outlets]
    return [target]


def reading(today: datetime.date):
    """What `tpcloud energy NAME` runs; TODAY is the client's date (which day is "today")."""

    async def run(target: Target, send: Send) -> Reading:
        meter = IMPLEMENTATIONS[target.device.dialect]
        readings = [await meter.reading(part, send, today) for part in _parts(target)]
        return readings[0] if len(readings) == 1 else Reading.of_outlets(readings)

    return run


def history(period: str, year: int, month: int, today: datetime.date):
    """What `tpcloud energy NAME --daily|--monthly` runs: the history up to TODAY."""

    async def run(target: Target, send: Send) -> History:
        meter = IMPLEMENTATIONS[target.device.dialect]
        histories = [await meter.history(part, send, period, year, month) for part in _parts(target)]
        return (histories[0] if len(histories) == 1 else History.of_outlets(histories)).until(today)

    return run


def exchange(asked: Asked, today: datetime.date):
    """What `tpcloud energy` runs (ASKED already passed its own `check`): the reading, or the
    history asked for."""
    if asked.period is None:
        return reading(today)
    return history(asked.period, asked.year or today.year, asked.month or today.month, today)
