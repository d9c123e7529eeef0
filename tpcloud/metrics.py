"""Metrics for collectors: every device's state and meter, once, as Prometheus text (for
node_exporter's textfile collector), InfluxDB line protocol, or NDJSON.

A device that did not answer is a ``tplink_up 0`` series (``up=0i``, ``"up": false``) with
nothing else, so a dead plug shows as such instead of vanishing. Labels: name, model, outlet,
route (``local``, ``cloud``, or ``none`` when nothing answered) and device_id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

# (Prometheus name, Reading field, help, type); tplink_up and tplink_on come first.
_METER_SERIES = (
    ("tplink_power_watts", "power_w", "Power drawn now, in W.", "gauge"),
    ("tplink_voltage_volts", "voltage_v", "Line voltage, in V.", "gauge"),
    ("tplink_current_amperes", "current_a", "Current drawn, in A.", "gauge"),
    ("tplink_energy_today_kwh", "today_kwh", "Energy used today, in kWh.", "gauge"),
    ("tplink_energy_month_kwh", "month_kwh", "Energy used this month, in kWh.", "gauge"),
    ("tplink_energy_kwh_total", "total_kwh", "Energy used since the meter was last reset, in kWh.", "counter"),
)
FORMATS = ("prom", "influx", "ndjson")


@dataclass(frozen=True)
class Point:
    """One target's share of a pass: who it is, how it was reached, and what it said (SAMPLE:
    what was measured, None when it did not answer; ERROR then says why)."""

    name: str
    model: str
    outlet: str
    device_id: str
    route: str
    sample: Any = None  # a capabilities.sample.Measured
    error: str | None = None

    def labels(self) -> dict[str, str]:
        return {"name": self.name, "model": self.model, "outlet": self.outlet, "route": self.route,
                "device_id": self.device_id}

    def values(self) -> dict[str, float | int]:
        """The figures of this point, by Reading field, plus ``up`` and ``on``; none is None."""
        values: dict[str, float | int] = {"up": int(self.sample is not None)}
        if self.sample is None:
            return values
        values["on"] = int(self.sample.on)
        reading = self.sample.reading
        for _, field, _, _ in _METER_SERIES:
            value = getattr(reading, field, None) if reading is not None else None
            if value is not None:
                values[field] = value
        return values


def render(points: list[Point], kind: str, now: float) -> str:
    """POINTS in KIND's format (one of FORMATS); NOW (unix seconds) stamps influx and NDJSON."""
    return {"prom": prometheus, "influx": influx, "ndjson": ndjson}[kind](points, now)


def _prom_labels(labels: dict[str, str]) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for value in labels.values())
    return "{" + ",".join(f'{key}="{value}"' for key, value in zip(labels, escaped)) + "}"


def _number(value: float | int) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def prometheus(points: list[Point], now: float) -> str:
    """The text exposition format (0.0.4, which node_exporter reads): HELP and TYPE once per
    metric, named as its samples are (the counter with its ``_total``), then one sample per point
    that has the figure; no timestamps, as the textfile collector stamps them when it reads."""
    families = [("tplink_up", "up", "Whether the device answered this pass (1) or not (0).", "gauge"),
                ("tplink_on", "on", "Whether the device or outlet is switched on.", "gauge"), *_METER_SERIES]
    lines: list[str] = []
    for name, field, help_text, kind in families:
        samples = [(p, p.values()[field]) for p in points if field in p.values()]
        if not samples:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{_prom_labels(p.labels())} {_number(v)}" for p, v in samples]
    return "\n".join(lines) + "\n"


_INFLUX_ESCAPE = re.compile(r"([,= \\])")


def _influx_escaped(value: str) -> str:
    """A tag value with its commas, equals signs, spaces and backslashes escaped."""
    return _INFLUX_ESCAPE.sub(r"\\\1", value)


def influx(points: list[Point], now: float) -> str:
    """InfluxDB line protocol, measurement ``tplink``: labels as tags (empty ones left out, as
    the protocol has no empty tag values), figures as fields (integers with ``i``), nanoseconds."""
    stamp = int(now * 1_000_000_000)
    lines = []
    for point in points:
        tags = "".join(f",{key}={_influx_escaped(value)}" for key, value in point.labels().items() if value)
        fields = ",".join(f"{key}={value}i" if isinstance(value, int) else f"{key}={value!r}"
                          for key, value in point.values().items())
        lines.append(f"tplink{tags} {fields} {stamp}")
    return "".join(line + "\n" for line in lines)


def ndjson(points: list[Point], now: float) -> str:
    """One JSON object per point and line: its labels, ``up``, its figures, and the error if any."""
    import datetime

    when = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat(timespec="seconds")
    lines = []
    for point in points:
        values = point.values()
        record: dict[str, Any] = {"time": when, **point.labels(), "up": bool(values.pop("up"))}
        if "on" in values:
            record["on"] = bool(values.pop("on"))
        record.update(values)
        record["error"] = point.error
        lines.append(json.dumps(record, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def points_of(outcomes: Iterable[Any]) -> list[Point]:
    """A Point per outcome of a pass (``DeviceService.run_many`` of ``sample``)."""
    points = []
    for outcome in outcomes:
        target = outcome.target
        identity = dict(name=target.full_name, model=target.device.model,
                        outlet=target.outlet.alias if target.outlet else "", device_id=target.device.device_id)
        if outcome.error is None:
            points.append(Point(**identity, route=outcome.result.route.kind, sample=outcome.result.result))
        else:
            points.append(Point(**identity, route="none", error=outcome.error.message))
    return points
