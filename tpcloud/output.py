"""How results and errors look: tables for people, JSON for scripts, one line per error.

Nothing here talks to the network or decides anything; it turns values into text.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol

from tpcloud.devices import Device
from tpcloud.errors import TpcloudError

if TYPE_CHECKING:
    from tpcloud.lan.discovery import Found


class CheckLine(Protocol):
    """What a line of `doctor` shows (tpcloud.doctor.Check)."""

    status: str
    name: str
    detail: str
    fix: str | None


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _address(found: "Found | None") -> str:
    return f"{found.host}:{found.port}" if found else ""


def device_rows(devices: Iterable[Device], lan: Mapping[str, "Found"]) -> list[dict[str, Any]]:
    """The device list as JSON-ready dicts (the documented shape of `list --json`)."""
    return [
        {
            "name": d.alias,
            "model": d.model,
            "type": d.device_type,
            "online": d.online,
            "device_id": d.device_id,
            "mac": d.mac,
            "app_server_url": d.app_server_url,
            "lan_address": _address(lan.get(d.device_id)) or None,
            "lan_wire": lan[d.device_id].wire if d.device_id in lan else None,
            "outlets": [{"name": o.alias, "id": o.id} for o in d.outlets],
        }
        for d in devices
    ]


def _table(rows: list[list[str]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)


def device_table(devices: Iterable[Device], lan: Mapping[str, "Found"]) -> str:
    """The device list as a table; a strip's outlets are indented under it."""
    rows = []
    for d in devices:
        online = "yes" if d.online else "no"
        rows.append([d.alias, d.model, d.device_type, online, d.device_id, d.app_server_url, _address(lan.get(d.device_id))])
        rows.extend([f"  └ {o.alias}", "", "outlet", "", o.id, "", ""] for o in d.outlets)
    return _table(rows, ["NAME", "MODEL", "TYPE", "ONLINE", "DEVICE ID", "APP SERVER", "LAN"])


def discovery_rows(found: Iterable[tuple["Found", Device | None]]) -> list[dict[str, Any]]:
    """What `discover --json` prints: each answer, and the account device it is (or null)."""
    return [
        {**f.to_dict(), "name": d.alias if d else None, "account_device_id": d.device_id if d else None}
        for f, d in found
    ]


def discovery_table(found: Iterable[tuple["Found", Device | None]]) -> str:
    rows = [
        [d.alias if d else "(not in this account)", f.model, f.wire + (f" v{f.version}" if f.version else ""),
         _address(f), f.mac]
        for f, d in found
    ]
    return _table(rows, ["NAME", "MODEL", "WIRE", "ADDRESS", "MAC"]) if rows else "No device answered."


def doctor_table(checks: Iterable[CheckLine]) -> str:
    """One line per check: its status, its name, and what was found (with what to do about it)."""
    rows = [[c.status, c.name, c.detail + (f" ({c.fix})" if c.fix else "")] for c in checks]
    return _table(rows, ["STATUS", "CHECK", "DETAIL"])


def duration(seconds: int) -> str:
    """`3725` → `1h 2m 5s`: on-times read at a glance."""
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    parts += [f"{minutes}m"] if minutes or hours or days else []
    return " ".join(parts + [f"{secs}s"])


def onoff(on: bool) -> str:
    return "on" if on else "off"


def countdown_text(timer: Any) -> str:
    """A pending countdown (``Countdown``): `off in 44m 12s` (or `off after 45m 0s` where the device
    does not say how long is left)."""
    action = onoff(timer.on)
    if timer.remaining is None:
        return f"{action} after {duration(timer.delay)} (time left not reported)"
    return f"{action} in {duration(timer.remaining)}"


def switched_text(result: Any, *, verbose: bool = False) -> str:
    """`Heater: on`, `Heater: on (off in 45m 0s)`, with the route under -v."""
    timer = f" ({countdown_text(result.timer)})" if result.timer is not None else ""
    return f"{result.target.full_name}: {onoff(result.on)}{timer}" + (f" (via {result.route})" if verbose else "")


def state_text(facts: dict[str, Any]) -> str:
    """The readable summary `tpcloud state` prints."""
    lines = [f"{facts['name']}: {onoff(facts['on'])}", f"  model: {facts['model']}"]
    if facts.get("on") and facts.get("on_time") is not None:
        lines.append(f"  on for: {duration(facts['on_time'])}")
    if facts.get("brightness") is not None:
        lines.append(f"  brightness: {facts['brightness']}%")
    if facts.get("timer") is not None:
        lines.append(f"  timer: {countdown_text(facts['timer'])}")
    for outlet in facts.get("outlets", []):
        lines.append(f"  outlet {outlet['name']}: {onoff(outlet['on'])}")
    return "\n".join(lines)


def error_line(exc: TpcloudError) -> str:
    """`tpcloud: <what went wrong> (<what to do>)` — one line on stderr."""
    text = " ".join(str(exc).split())
    return f"tpcloud: {text}" + (f" ({exc.hint})" if exc.hint else "")


# -- watch and wait: samples are tpcloud.watching values ------------------------------------------


def json_line(value: Any) -> str:
    """VALUE as one line of JSON (NDJSON: `watch --json` prints one object per sample)."""
    return json.dumps(value, ensure_ascii=False)


def _time_of_day(at: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(at).strftime("%H:%M:%S")


def sample_text(sample: Any) -> str:
    """`12:00:05 Kettle: on, 61.8 W, 230.8 V, 0.451 A; today 0.120 kWh, ...` (the reading as
    `energy` shows it); a device without a meter `12:00:05 Desk Lamp: on`."""
    when = _time_of_day(sample.at)
    name = sample.target.full_name
    parts = [onoff(sample.on)] if sample.on is not None else []
    if sample.reading is not None:
        parts.append(reading_text(name, sample.reading).removeprefix(f"{name}: "))
    return f"{when} {name}: " + ", ".join(parts)


def unreached_text(name: str, at: float, error: TpcloudError) -> str:
    """`12:00:05 Washer: offline (cannot connect to ...)`: a sample of `wait --offline|--online`."""
    return f"{_time_of_day(at)} {name}: offline ({error.message.removeprefix(f'{name}: ')})"


def waited_text(name: str, condition: Any, hold: int) -> str:
    """`Washer: power below 3 W for 2m 0s`: what `wait` saw before it returned."""
    return f"{name}: {condition}" + (f" for {duration(hold)}" if hold else "")


# -- capabilities (light, energy, led): results are tpcloud.capabilities values ------------------


def led_text(name: str, state: Any) -> str:
    """`Desk Lamp: LED on`, with a SMART rule that is more than on/off (`night_mode`) in brackets."""
    mode = f" ({state.mode})" if state.mode not in (None, "always", "never") else ""
    return f"{name}: LED {onoff(state.on)}{mode}"


def reading_text(name: str, reading: Any) -> str:
    """`Kettle: 61.8 W, 230.8 V, 0.451 A; today 0.120 kWh, this month 1.500 kWh, total 16.323 kWh`."""
    now = [f"{reading.power_w:.1f} W"]
    now += [f"{reading.voltage_v:.1f} V"] if reading.voltage_v is not None else []
    now += [f"{reading.current_a:.3f} A"] if reading.current_a is not None else []
    energy = [
        f"{label} {kwh:.3f} kWh"
        for label, kwh in (("today", reading.today_kwh), ("this month", reading.month_kwh), ("total", reading.total_kwh))
        if kwh is not None
    ]
    return f"{name}: " + ", ".join(now) + ("; " + ", ".join(energy) if energy else "")


def history_text(name: str, history: Any, width: int | None = None) -> str:
    """A heading, then one line per day or month with its energy, and their sum. A figure the
    archive supplied is marked `archive` (unless all are: an archive query says so at the top).
    With WIDTH (a terminal's columns), a bar beside each figure, the largest reaching WIDTH."""
    from tpcloud.charts import bar

    unit = {"daily": "day", "monthly": "month", "hourly": "hour"}[history.period]
    if history.span is not None:
        first, last = history.span
        lines = [f"{name}: kWh per {unit} from the archive, " + (f"{first} to {last}" if first else f"up to {last}")]
    elif history.period == "hourly":  # the device's last days
        labels = [label for label, _ in history.entries]
        lines = [f"{name}: kWh per hour, {labels[0][:10]} to {labels[-1][:10]}" if history.entries
                 else f"{name}: kWh per hour: none held"]
    else:
        period = f"{history.year}-{history.month:02d}" if history.month else str(history.year)
        lines = [f"{name}: kWh per {unit} in {period}"]
    sources = [history.source(n) for n in range(len(history.entries))]
    marked = history.span is None and "archive" in sources
    rows = [f"  {label:<10}  {kwh:9.3f}" + (f"  {source if source == 'archive' else '':<7}" if marked else "")
            for (label, kwh), source in zip(history.entries, sources)]
    room = 0 if width is None or not rows else width - max(len(row) for row in rows) - 2
    if room >= _SHORTEST_BAR:
        top, column = max(kwh for _, kwh in history.entries), max(len(row) for row in rows)
        rows = [f"{row:<{column}}  {bar(kwh, top, room)}" for row, (_, kwh) in zip(rows, history.entries)]
    lines += [row.rstrip() for row in rows]
    lines.append(f"  {'total':<10}  {sum(kwh for _, kwh in history.entries):9.3f}")
    return "\n".join(lines)


# A terminal too narrow for bars of at least this many cells gets the numbers alone.
_SHORTEST_BAR = 8
_READING_FIELDS = ("power_w", "voltage_v", "current_a", "today_kwh", "month_kwh", "total_kwh")


def _fixed(value: float | None, decimals: int) -> str:
    return "" if value is None else f"{value:.{decimals}f}"


def readings_table(results: list[Any]) -> str:
    """Every meter's reading (``Done`` results), a row each, and a TOTAL row of the power and of
    each energy column every meter reports (voltage and current do not add up)."""
    if not results:
        return "No energy meter answered."
    readings = [done.result for done in results]
    rows = [[done.target.full_name, *(_fixed(getattr(done.result, f), d) for f, d in zip(_READING_FIELDS, (1, 1, 3, 3, 3, 3)))]
            for done in results]
    from tpcloud.capabilities.energy import Reading

    total = Reading.of_outlets(readings)
    rows.append(["TOTAL", _fixed(total.power_w, 1), "", "", _fixed(total.today_kwh, 3), _fixed(total.month_kwh, 3),
                 _fixed(total.total_kwh, 3)])
    from tabulate import tabulate

    return tabulate(rows, headers=["NAME", "POWER W", "VOLTAGE V", "CURRENT A", "TODAY kWh", "MONTH kWh", "TOTAL kWh"],
                    tablefmt="plain", disable_numparse=True, colalign=("left", *["right"] * 6))


def kept_text(name: str, kept: Any) -> str:
    """What `energy --archive` did with one meter: `Kettle: 45 days and 12 months held; 3 added, 1 updated`
    (`Plug: 45 days, 12 months and 96 hours held; ...` for a meter that had hours to give)."""
    counts = [(kept.added, "added", "added"), (kept.updated, "updated", "updated"), (kept.resets, "reset", "resets"),
              (kept.gaps, "gap", "gaps")]
    changes = ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts if n)
    days, months, hours = (f"{n} {unit}{'' if n == 1 else 's'}"
                           for n, unit in ((kept.days, "day"), (kept.months, "month"), (kept.hours, "hour")))
    held = f"{days}, {months} and {hours}" if kept.hours else f"{days} and {months}"
    return f"{name}: {held} held; {changes or 'nothing new'}"


def csv_text(header: list[str], rows: Iterable[list[Any]]) -> str:
    """HEADER and ROWS as CSV (RFC 4180: CRLF line ends, quotes where needed); None is empty."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([["" if value is None else value for value in row] for row in rows])
    return out.getvalue()


def reading_rows(results: list[Any]) -> list[list[Any]]:
    """`energy --format csv` of readings: a row per meter, under ``READING_HEADER``."""
    return [[*_identity(done), *(getattr(done.result, f) for f in _READING_FIELDS)] for done in results]


def history_rows(results: list[Any]) -> list[list[Any]]:
    """`energy --daily|--monthly|--hourly --format csv`: a row per day, month or hour of each meter, under ``HISTORY_HEADER``."""
    return [[*_identity(done), done.result.period, label, kwh, done.result.source(n)]
            for done in results for n, (label, kwh) in enumerate(done.result.entries)]


def kept_rows(results: list[Any]) -> list[list[Any]]:
    """`energy --archive --format csv`: a row per meter, under ``KEPT_HEADER``."""
    return [[*_identity(done), *(getattr(done.result, f) for f in KEPT_HEADER[3:])] for done in results]


def _identity(done: Any) -> list[Any]:
    who = done.target.identity()
    return [who["name"], who["device_id"], who["outlet_id"]]


READING_HEADER = ["name", "device_id", "outlet_id", *_READING_FIELDS]
HISTORY_HEADER = ["name", "device_id", "outlet_id", "period", "date", "kwh", "source"]
KEPT_HEADER = ["name", "device_id", "outlet_id", "days", "months", "hours", "added", "updated", "resets", "gaps"]


def light_text(name: str, state: Any) -> str:
    """`Hall Bulb: on, brightness 50%, 2700 K` (or `hue 240, saturation 100%` in colour mode)."""
    parts = [f"{name}: {onoff(state.on)}"]
    if state.brightness is not None:
        parts.append(f"brightness {state.brightness}%")
    if state.color_temp:
        parts.append(f"{state.color_temp} K")
    elif state.hue is not None:
        parts.append(f"hue {state.hue}, saturation {state.saturation}%")
    return ", ".join(parts)


# -- timers, schedules, clocks (tpcloud.capabilities.timer, .schedule, .clock) -----------------


def timer_text(name: str, state: Any) -> str:
    """`Heater: off in 44m 12s`, `Heater: no timer`, `Heater: timer cleared`."""
    if state.cleared:
        return f"{name}: timer cleared"
    return f"{name}: " + (countdown_text(state.pending) if state.pending is not None else "no timer")


def _rule_id(rule_id: str | None) -> str:
    """A rule's id as the text shows it: IOT ids are 32 digits, and their first 8 are enough to
    name them (`schedule NAME rm` takes any unique start)."""
    return (rule_id or "?")[:8]


def schedule_text(name: str, change: Any) -> str:
    """What a schedule command did, then (for `list`) each rule: `  S1  on at sunset-15m daily`."""
    verb = ("would add", "would remove") if change.dry_run else ("added", "removed")
    lines = [f"{name}: {verb[0]} {rule}" for rule in change.added]
    lines += [f"{name}: {verb[1]} " + (str(r.rule) if r.rule is not None else f"rule {_rule_id(r.id)}") for r in change.removed]
    lines += [f"{name}: {'enabled' if rule.enabled else 'disabled'} {_rule_id(rule.id)} {rule}" for rule in change.switched]
    if lines:
        return "\n".join(lines)
    count = len(change.rules)
    lines = [f"{name}: {count} rule{'s' if count != 1 else ''}" + ("" if change.active or not count else
             " (switched off on the device as a whole: adding or enabling a rule switches them on)")]
    lines += [f"  {_rule_id(r.id):<8}  " + (str(r.rule) if r.rule is not None else "(a kind of rule tpcloud does not read)")
              for r in change.rules]
    return "\n".join(lines)


def applied_text(name: str, change: Any) -> str:
    """What `schedule apply` did to one device (or would do), or that it was up to date."""
    if change.changed:
        return schedule_text(name, change)
    count = len(change.rules)
    return f"{name}: up to date ({count} rule{'s' if count != 1 else ''})"


def clock_text(name: str, clock: Any) -> str:
    """`Porch Light: 2026-11-29 23:51:25 Europe/Berlin, 5m 3s ahead of this machine`."""
    when = clock.time.strftime("%Y-%m-%d %H:%M:%S")
    zone = f" {clock.zone}" if clock.zone else ""
    offset = clock.time.strftime(" (UTC%z)") if clock.time.utcoffset() is not None else ""
    if clock.drift is None:
        step = "its time zone is unknown here, so how far it is off cannot be told"
    elif abs(clock.drift) < 2:
        step = "in step with this machine"
    else:
        step = f"{duration(round(abs(clock.drift)))} {'ahead of' if clock.drift > 0 else 'behind'} this machine"
    return f"{name}: {'set to ' if clock.synced else ''}{when}{zone}{offset}, {step}"
