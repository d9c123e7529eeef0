"""What people type for times, read into numbers: durations (``45m``, ``1h30m``), times of day
(``07:30``, ``sunset-15m``) and days (``mon,wed``, ``weekdays``).

Timers, schedules and schedule files all read these the same way, and each wrong spelling is
a UsageError that says what would have been right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tpcloud.errors import UsageError

# Day numbers as ``datetime.date.weekday()`` counts them: 0 = Monday ... 6 = Sunday.
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = frozenset(range(7))
DAY_SETS = {"daily": EVERY_DAY, "weekdays": frozenset(range(5)), "weekends": frozenset({5, 6})}
SUN_EVENTS = ("sunrise", "sunset")

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_SUN = re.compile(r"(sunrise|sunset)(?:([+-])(\S+))?")


def parse_duration(text: str) -> int:
    """``30s``, ``45m``, ``1h30m``, ``2h`` (or a bare number of seconds) → seconds, at least 1."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if value.isdigit():
        seconds = int(value)
    elif match and value:
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise UsageError(f"{text!r} is not a duration: write it as 30s, 45m, 1h30m or 2h")
    if seconds < 1:
        raise UsageError(f"{text!r} is no time at all: a duration is at least 1s")
    return seconds


def parse_offset(text: str) -> int:
    """``-15m``, ``+1h``, ``30m`` (before or after sunrise/sunset) → signed minutes."""
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    seconds = parse_duration(value.lstrip("+-")) if value.lstrip("+-") not in ("0", "") else 0
    if seconds % 60:
        raise UsageError(f"{text!r}: an offset from sunrise or sunset is whole minutes")
    return sign * seconds // 60


@dataclass(frozen=True)
class When:
    """A time of day: MINUTE after midnight, or SUN (sunrise/sunset) moved by OFFSET minutes."""

    minute: int | None = None
    sun: str | None = None
    offset: int = 0

    def __str__(self) -> str:
        if self.sun is None:
            return f"{self.minute // 60:02d}:{self.minute % 60:02d}"  # type: ignore[operator]
        if not self.offset:
            return self.sun
        sign = "-" if self.offset < 0 else "+"
        hours, minutes = divmod(abs(self.offset), 60)
        return f"{self.sun}{sign}" + (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or not hours else "")


def parse_when(text: str) -> When:
    """``07:30``, ``sunrise``, ``sunset-15m``, ``sunrise+1h`` → a When."""
    value = text.strip().lower()
    clock = _CLOCK.fullmatch(value)
    if clock:
        return When(minute=int(clock.group(1)) * 60 + int(clock.group(2)))
    sun = _SUN.fullmatch(value)
    if sun:
        event, sign, offset = sun.groups()
        return sun_when(event, f"{sign}{offset}" if offset else None)
    raise UsageError(f"{text!r} is not a time of day: write HH:MM (24-hour), sunrise or sunset, "
                     "with an offset such as sunset-15m")


def sun_when(event: str, offset: str | None) -> When:
    """EVENT (sunrise or sunset) moved by OFFSET (``-15m``, ``+1h``, ``30m`` = after), at most 12h."""
    minutes = parse_offset(offset) if offset else 0
    if abs(minutes) > 720:
        raise UsageError(f"{offset!r}: an offset from sunrise or sunset is at most 12h either way")
    return When(sun=event, offset=minutes)


def parse_days(text: str) -> frozenset[int]:
    """``daily``, ``weekdays``, ``weekends`` or names such as ``mon,wed,fri`` → day numbers."""
    value = text.strip().lower()
    if value in DAY_SETS:
        return DAY_SETS[value]
    days = set()
    for part in filter(None, (p.strip()[:3] for p in value.split(","))):
        if part not in DAY_NAMES:
            raise UsageError(f"{text!r} is not a set of days: write daily, weekdays, weekends or "
                             "names such as mon,wed,fri")
        days.add(DAY_NAMES.index(part))
    if not days:
        raise UsageError("name at least one day")
    return frozenset(days)


def days_text(days: frozenset[int]) -> str:
    """Day numbers the way people say them: ``daily``, ``weekdays``, ``mon,wed``."""
    for name, members in DAY_SETS.items():
        if days == members:
            return name
    return ",".join(DAY_NAMES[d] for d in sorted(days))
