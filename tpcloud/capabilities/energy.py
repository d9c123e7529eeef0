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
hardware here). With ``interval`` 60 they answer hours: ``start_timestamp`` local midnight of the
first day, ``end_timestamp`` 23:59:59 local of the last, at most 8 days inclusive, one Wh figure
per hour from the start (labelled by local wall-clock hour, "2025-06-01T13"). Kasa meters keep
no hours. How far back a Tapo meter keeps hours is not known: the walk asks until 8 days hold
nothing.

Meters forget: Kasa plugs keep a month or two of days, and a firmware update or a reset empties
them. ``holdings`` walks back through everything a meter still holds, for the archive
(tpcloud/archive.py), and ``History.merged`` lays the archive's figures under the device's,
saying which came from where.
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Iterator, Mapping, Optional, TypeVar

from tpcloud.capabilities import Send, absent, lacking
from tpcloud.devices import Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import DeviceError, NotSupported, ProtocolError, UsageError

WHAT = "energy meter"
DAILY, MONTHLY, HOURLY = "daily", "monthly", "hourly"
# The longest span (days, inclusive) one hourly get_energy_data may ask about (tapo's
# EnergyDataInterval::Hourly: "must not be greater than 8 days").
HOURLY_DAYS = 8
NO_HOURS = "the device keeps no hourly energy figures (Kasa meters keep days and months only)"
# Where a figure of a history comes from: the device, or the archive (which kept it after the
# device forgot it or reset).
DEVICE, ARCHIVE = "device", "archive"
# No meter has figures from before this year; IOT meters refuse to be asked about earlier ones.
OLDEST_YEAR = 2000
P = TypeVar("P")
# What the service passes a history exchange to look figures up in the archive: a meter (a device
# or one outlet) -> its archived figures of the period asked, by date.
Archived = Callable[[Target], Mapping[str, float]]


@dataclass(frozen=True)
class Asked:
    """What `tpcloud energy` was asked for: the reading now, or the daily (per day of MONTH of
    YEAR), monthly (per month of YEAR) or hourly (per hour of the last 8 days) history; None =
    this month or year. START and END (``--from``, ``--to``) ask the archive for the days, months
    or hours between them instead."""

    daily: bool = False
    monthly: bool = False
    month: int | None = None
    year: int | None = None
    start: datetime.date | None = None
    end: datetime.date | None = None
    hourly: bool = False

    def check(self, today: datetime.date) -> None:
        """The checks that need no device: one period at most, --month and --year only with
        theirs, both in range (no year after TODAY's)."""
        if self.daily + self.monthly + self.hourly > 1:
            raise UsageError("--daily, --monthly and --hourly cannot be combined")
        if self.hourly and (self.month is not None or self.year is not None):
            raise UsageError("--hourly takes no --month or --year: --from and --to choose its days")
        if self.month is not None and not self.daily:
            raise UsageError("--month goes with --daily")
        if self.year is not None and not (self.daily or self.monthly):
            raise UsageError("--year goes with --daily or --monthly")
        if self.month is not None and not 1 <= self.month <= 12:
            raise UsageError(f"--month must be 1-12, not {self.month}")
        if self.year is not None and not OLDEST_YEAR <= self.year <= today.year:
            raise UsageError(f"--year must be {OLDEST_YEAR}-{today.year}, not {self.year}")
        if self.ranged and self.period is None:
            raise UsageError("--from and --to go with --daily, --monthly or --hourly")
        if self.ranged and (self.month is not None or self.year is not None):
            raise UsageError("--from and --to cannot be combined with --month or --year")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise UsageError(f"--from {self.start} is after --to {self.end}")

    @property
    def ranged(self) -> bool:
        """Whether --from or --to asks the archive for a span of dates."""
        return self.start is not None or self.end is not None

    @property
    def period(self) -> str | None:
        """DAILY, MONTHLY, HOURLY, or None for the reading now."""
        return DAILY if self.daily else MONTHLY if self.monthly else HOURLY if self.hourly else None


def day_given(option: str, text: str, *, last: bool = False) -> datetime.date:
    """The date OPTION was given: 2025-03-31, or 2025-03 for that month's first day (with LAST,
    its last day, as `--to 2025-03` means up to the end of March)."""
    try:
        if len(text) == 7 and text[4] == "-":
            first = datetime.date(int(text[:4]), int(text[5:]), 1)
            return _month_after(first) - datetime.timedelta(days=1) if last else first
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} takes a date such as 2025-03-31 or 2025-03, not {text!r}") from None


def _month_after(first: datetime.date) -> datetime.date:
    return datetime.date(first.year + first.month // 12, first.month % 12 + 1, 1)


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
    """Energy per day of one month (``daily``) or per month of one year (``monthly``); from the
    archive, per day or month from one date to another (``span``, and no year or month)."""

    period: str
    year: int | None
    month: int | None
    entries: tuple[tuple[str, float], ...]  # ("2025-06-01" or "2025-06", kWh), oldest first
    # DEVICE or ARCHIVE for each entry; empty when every figure is the device's
    sources: tuple[str, ...] = ()
    # an archive query's (--from, --to) dates: the first (None: from the start) and the last
    span: tuple[str | None, str] | None = None

    def source(self, index: int) -> str:
        """Where the INDEXth entry's figure comes from."""
        return self.sources[index] if self.sources else DEVICE

    def to_dict(self) -> dict[str, Any]:
        shape = {
            "period": self.period, "year": self.year, "month": self.month,
            "entries": [{"date": label, "kwh": kwh, "source": self.source(n)} for n, (label, kwh) in enumerate(self.entries)],
        }
        return shape if self.span is None else {**shape, "from": self.span[0], "to": self.span[1]}

    def until(self, today: datetime.date, hour: str | None = None) -> "History":
        """The entries up to TODAY (an hourly one: up to HOUR, "2025-06-01T13"): a SMART history
        lists the rest of its quarter, year or day as zeros."""
        now = (hour or f"{today.isoformat()}T23") if self.period == HOURLY else today.isoformat()
        kept = [n for n, (label, _) in enumerate(self.entries) if label <= now[:len(label)]]
        return self._only(kept)

    def _only(self, indexes: list[int]) -> "History":
        return History(self.period, self.year, self.month, tuple(self.entries[n] for n in indexes),
                       tuple(self.sources[n] for n in indexes) if self.sources else (), self.span)

    def merged(self, archived: Mapping[str, float]) -> "History":
        """These figures with the archive's for the same dates (ARCHIVED): the archive's where the
        device no longer holds one (it lists none, or a SMART meter says 0) or now holds less (its
        meter was reset since), which the archive keeps as it was; the device's everywhere else."""
        held = dict(self.entries)
        entries, sources = [], []
        for label in sorted(held.keys() | archived.keys()):
            device, kept = held.get(label), archived.get(label)
            if device is not None and (kept is None or device >= kept):
                entries.append((label, device))
                sources.append(DEVICE)
            else:
                entries.append((label, archived[label]))
                sources.append(ARCHIVE)
        return History(self.period, self.year, self.month, tuple(entries), tuple(sources), self.span)

    @classmethod
    def of_outlets(cls, histories: list["History"]) -> "History":
        """A strip's history: its outlets' energy added, date by date; a sum with a figure from
        the archive in it is the archive's."""
        sums: dict[str, float] = {}
        archived: set[str] = set()
        for history in histories:
            for n, (label, kwh) in enumerate(history.entries):
                sums[label] = sums.get(label, 0.0) + kwh
                if history.source(n) == ARCHIVE:
                    archived.add(label)
        first, labels = histories[0], sorted(sums)
        sources = tuple(ARCHIVE if label in archived else DEVICE for label in labels) if archived else ()
        return cls(first.period, first.year, first.month, tuple((label, sums[label]) for label in labels), sources, first.span)


@dataclass(frozen=True)
class Held:
    """Every daily, monthly and hourly figure one meter still holds, oldest first, and the first
    day, month and hour it was asked about: a figure the archive has from then on that is not here
    is one the meter no longer holds. HOURS_FROM is None for a meter that keeps no hours."""

    days: tuple[tuple[str, float], ...]
    months: tuple[tuple[str, float], ...]
    days_from: str
    months_from: str
    hours: tuple[tuple[str, float], ...] = ()
    hours_from: str | None = None


async def _walk(periods: Iterator[P], ask: Callable[[P], Awaitable[list[tuple[str, float]]]]) -> tuple[list[tuple[str, float]], P]:
    """ASK about each of PERIODS, newest first, until one after the first has nothing: every
    figure found, oldest first, and the oldest period asked."""
    found: list[tuple[str, float]] = []
    asked = 0
    for period in periods:
        got = await ask(period)
        found[:0] = got
        if not got and asked:
            break
        asked += 1
    return found, period


def _months_back(today: datetime.date) -> Iterator[tuple[int, int]]:
    year, month = today.year, today.month
    while year >= OLDEST_YEAR:
        yield year, month
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)


def _windows_back(today: datetime.date) -> Iterator[datetime.date]:
    """The first day of each span of HOURLY_DAYS days that ends on TODAY, then of each before it."""
    first = today - datetime.timedelta(days=HOURLY_DAYS - 1)
    while first.year >= OLDEST_YEAR:
        yield first
        first -= datetime.timedelta(days=HOURLY_DAYS)


def _quarters_back(today: datetime.date) -> Iterator[datetime.date]:
    """The first day of TODAY's quarter, then of each quarter before it."""
    for year, month in _months_back(today):
        if month % 3 == 1:
            yield datetime.date(year, month, 1)


class Meter(ABC):
    """One dialect's way to a meter (of a device, or of one strip outlet)."""

    @abstractmethod
    async def reading(self, target: Target, send: Send, today: datetime.date) -> Reading: ...

    @abstractmethod
    async def history(self, target: Target, send: Send, period: str, year: int, month: int) -> History: ...

    async def hours(self, target: Target, send: Send, first: datetime.date) -> list[tuple[str, float]]:
        """The meter's figures per hour of the HOURLY_DAYS days from FIRST: ("2025-06-01T13", kWh)."""
        raise NotSupported(NO_HOURS)

    @abstractmethod
    async def held(self, target: Target, send: Send, today: datetime.date) -> Held:
        """Everything the meter still holds: asked month by month (IOT) or quarter by quarter
        (SMART), and year by year, back from TODAY until a period after the first has nothing."""


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

    async def _stat(self, target: Target, send: Send, period: str, year: int, month: int) -> list[tuple[str, float]]:
        """The meter's figures per day of a month, or per month of a year: ("2025-06-01", kWh)."""
        method, params, key = (
            ("get_daystat", {"year": year, "month": month}, "day_list") if period == DAILY
            else ("get_monthstat", {"year": year}, "month_list")
        )
        body = await self._ask(target, send, {method: params})
        return [("-".join(f"{v:02d}" for v in when), kwh) for when, kwh in iot_entries(body[method], key)]

    async def history(self, target: Target, send: Send, period: str, year: int, month: int) -> History:
        entries = await self._stat(target, send, period, year, month)
        return History(period, year, month if period == DAILY else None, tuple(entries))

    async def held(self, target: Target, send: Send, today: datetime.date) -> Held:
        days, (year, month) = await _walk(_months_back(today), lambda m: self._stat(target, send, DAILY, *m))
        months, first_year = await _walk(iter(range(today.year, OLDEST_YEAR - 1, -1)),
                                         lambda y: self._stat(target, send, MONTHLY, y, 1))
        return Held(tuple(days), tuple(months), f"{year}-{month:02d}-01", f"{first_year}-01")


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

    async def _data(self, target: Target, send: Send, period: str, first: datetime.date) -> list[tuple[str, float]]:
        """The meter's figures per day of the quarter, or per month of the year, that starts on
        FIRST: ("2025-06-01", kWh), the days or months to come included (as zeros)."""
        stamp = int(datetime.datetime(first.year, first.month, first.day).timestamp())
        params = {"start_timestamp": stamp, "end_timestamp": stamp, "interval": 1440 if period == DAILY else 43200}
        with lacking("energy history", also=_SMART_ABSENT):
            kwh = smart_history_data(await self._ask(target, send, "get_energy_data", params))
        if period == MONTHLY:
            return [(f"{first.year}-{n + 1:02d}", v) for n, v in enumerate(kwh[:12])]
        return [((first + datetime.timedelta(days=n)).isoformat(), v) for n, v in enumerate(kwh)]

    async def hours(self, target: Target, send: Send, first: datetime.date) -> list[tuple[str, float]]:
        midnight = datetime.datetime(first.year, first.month, first.day)
        last = midnight + datetime.timedelta(days=HOURLY_DAYS) - datetime.timedelta(seconds=1)
        params = {"start_timestamp": int(midnight.timestamp()), "end_timestamp": int(last.timestamp()), "interval": 60}
        with lacking("hourly energy history", also=_SMART_ABSENT):
            kwh = smart_history_data(await self._ask(target, send, "get_energy_data", params))
        return [((midnight + datetime.timedelta(hours=n)).strftime("%Y-%m-%dT%H"), v)
                for n, v in enumerate(kwh[:24 * HOURLY_DAYS])]

    async def history(self, target: Target, send: Send, period: str, year: int, month: int) -> History:
        if period == MONTHLY:
            return History(period, year, None, tuple(await self._data(target, send, period, datetime.date(year, 1, 1))))
        days = await self._data(target, send, period, datetime.date(year, 3 * ((month - 1) // 3) + 1, 1))
        return History(period, year, month, tuple(e for e in days if e[0][:7] == f"{year}-{month:02d}"))

    async def held(self, target: Target, send: Send, today: datetime.date) -> Held:
        """A 0 is not a figure held: these meters answer 0 alike for a day without use and for a
        day they no longer hold (or one still to come)."""
        now = today.isoformat()

        async def used(period: str, first: datetime.date) -> list[tuple[str, float]]:
            return [(label, kwh) for label, kwh in await self._data(target, send, period, first)
                    if kwh > 0 and label <= now[:len(label)]]

        days, oldest = await _walk(_quarters_back(today), lambda first: used(DAILY, first))
        months, first_year = await _walk(iter(range(today.year, OLDEST_YEAR - 1, -1)),
                                         lambda y: used(MONTHLY, datetime.date(y, 1, 1)))

        async def used_hours(first: datetime.date) -> list[tuple[str, float]]:
            return [(label, kwh) for label, kwh in await self.hours(target, send, first) if kwh > 0]

        try:
            hours, first_day = await _walk(_windows_back(today), used_hours)
        except NotSupported:  # a firmware without hours: its days and months are still kept
            hours, since = [], None
        else:
            since = f"{first_day.isoformat()}T00"
        return Held(tuple(days), tuple(months), oldest.isoformat(), f"{first_year}-01", tuple(hours), since)


IMPLEMENTATIONS: dict[str, Meter] = {"iot": IotMeter(), "smart": SmartMeter()}


def parts(target: Target) -> list[Target]:
    """What is measured: the target, or each outlet of a strip named as a whole."""
    if target.outlet is None and target.device.outlets:
        return [Target(target.device, outlet) for outlet in target.device.outlets]
    return [target]


def reading(today: datetime.date):
    """What `tpcloud energy NAME` runs; TODAY is the client's date (which day is "today")."""

    async def run(target: Target, send: Send) -> Reading:
        meter = IMPLEMENTATIONS[target.device.dialect]
        readings = [await meter.reading(part, send, today) for part in parts(target)]
        return readings[0] if len(readings) == 1 else Reading.of_outlets(readings)

    return run


def history(period: str, year: int, month: int, today: datetime.date, archived: Optional[Archived] = None,
            hour: str | None = None):
    """What `tpcloud energy NAME --daily|--monthly|--hourly` runs: the history up to TODAY (hours:
    the last HOURLY_DAYS days, up to HOUR), each meter's merged with what the archive keeps of it
    (ARCHIVED, when there is an archive)."""

    async def one(meter: Meter, part: Target, send: Send) -> History:
        if period != HOURLY:
            return await meter.history(part, send, period, year, month)
        first = today - datetime.timedelta(days=HOURLY_DAYS - 1)
        return History(period, None, None, tuple(await meter.hours(part, send, first)))

    async def run(target: Target, send: Send) -> History:
        meter = IMPLEMENTATIONS[target.device.dialect]
        histories = []
        for part in parts(target):
            found = (await one(meter, part, send)).until(today, hour)
            histories.append(found.merged(archived(part)) if archived is not None else found)
        return histories[0] if len(histories) == 1 else History.of_outlets(histories)

    return run


def holdings(today: datetime.date):
    """What `tpcloud energy --archive` runs on each meter: everything it still holds."""

    async def run(target: Target, send: Send) -> Held:
        return await IMPLEMENTATIONS[target.device.dialect].held(target, send, today)

    return run


def exchange(asked: Asked, today: datetime.date, archived: Optional[Archived] = None, hour: str | None = None):
    """What `tpcloud energy` runs (ASKED already passed its own `check`): the reading, or the
    history asked for (merged with the archive's figures where ARCHIVED looks them up; hours up
    to HOUR, "2025-06-01T13")."""
    if asked.period is None:
        return reading(today)
    return history(asked.period, asked.year or today.year, asked.month or today.month, today, archived, hour)
