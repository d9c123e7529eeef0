"""Time zones: the ones a Kasa (IOT) device knows by number, and this machine's own.

An IOT device keeps its zone as an index into a list in its firmware; the names below are that
list, as python-kasa maps it (``kasa/iot/iottimezone.py``, read from devices; a fact, not checked
here). SMART devices name their zone (``region``) and give its offset themselves.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

# IOT zone index -> IANA name (0-109).
IOT_ZONES = (
    "Etc/GMT+12", "Pacific/Samoa", "US/Hawaii", "US/Alaska", "Mexico/BajaNorte", "Etc/GMT+8",
    "PST8PDT", "US/Arizona", "America/Mazatlan", "MST", "MST7MDT", "Mexico/General", "Etc/GMT+6",
    "CST6CDT", "America/Monterrey", "Canada/Saskatchewan", "America/Bogota", "Etc/GMT+5", "EST",
    "America/Indiana/Indianapolis", "America/Caracas", "America/Asuncion", "Etc/GMT+4",
    "Canada/Atlantic", "America/Cuiaba", "Brazil/West", "America/Santiago", "Canada/Newfoundland",
    "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/Cayenne", "America/Miquelon",
    "America/Montevideo", "Chile/Continental", "Etc/GMT+2", "Atlantic/Azores",
    "Atlantic/Cape_Verde", "Africa/Casablanca", "UCT", "GB", "Africa/Monrovia", "Europe/Amsterdam",
    "Europe/Belgrade", "Europe/Brussels", "Europe/Sarajevo", "Africa/Lagos", "Africa/Windhoek",
    "Asia/Amman", "Europe/Athens", "Asia/Beirut", "Africa/Cairo", "Asia/Damascus", "EET",
    "Africa/Harare", "Europe/Helsinki", "Asia/Istanbul", "Asia/Jerusalem", "Europe/Kaliningrad",
    "Africa/Tripoli", "Asia/Baghdad", "Asia/Kuwait", "Europe/Minsk", "Europe/Moscow",
    "Africa/Nairobi", "Asia/Tehran", "Asia/Muscat", "Asia/Baku", "Europe/Samara",
    "Indian/Mauritius", "Asia/Tbilisi", "Asia/Yerevan", "Asia/Kabul", "Asia/Ashgabat",
    "Asia/Yekaterinburg", "Asia/Karachi", "Asia/Kolkata", "Asia/Colombo", "Asia/Kathmandu",
    "Asia/Almaty", "Asia/Dhaka", "Asia/Novosibirsk", "Asia/Rangoon", "Asia/Bangkok",
    "Asia/Krasnoyarsk", "Asia/Chongqing", "Asia/Irkutsk", "Asia/Singapore", "Australia/Perth",
    "Asia/Taipei", "Asia/Ulaanbaatar", "Asia/Tokyo", "Asia/Seoul", "Asia/Yakutsk",
    "Australia/Adelaide", "Australia/Darwin", "Australia/Brisbane", "Australia/Canberra",
    "Pacific/Guam", "Australia/Hobart", "Antarctica/DumontDUrville", "Asia/Magadan",
    "Asia/Srednekolymsk", "Etc/GMT-11", "Asia/Anadyr", "Pacific/Auckland", "Etc/GMT-12",
    "Pacific/Fiji", "Etc/GMT-13", "Pacific/Apia", "Etc/GMT-14",
)


def zone(name: str | None) -> datetime.tzinfo | None:
    """The zone NAME (an IANA name), or None where this machine has no such zone data."""
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def iot_zone(index: int) -> datetime.tzinfo | None:
    """The zone of IOT zone INDEX, or None for an index out of the list or without zone data here."""
    return zone(IOT_ZONES[index]) if 0 <= index < len(IOT_ZONES) else None


def local_name() -> str | None:
    """This machine's zone as an IANA name, when it says (``TZ``, or where /etc/localtime points)."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz if zone(tz) is not None else None  # a POSIX rule such as CET-1CEST has no name
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return None
    name = target.partition("zoneinfo/")[2]
    return name if name and zone(name) is not None else None


def local_offset(moment: float) -> int:
    """This machine's offset from UTC at MOMENT (unix seconds), in minutes east."""
    return (time.localtime(moment).tm_gmtoff or 0) // 60


def iot_index_for_here(year: int) -> int | None:
    """The IOT zone that keeps this machine's time: its own name in the list, else the first zone
    whose offset matches this machine's at noon of every day of YEAR (so daylight saving changes
    on the same days); None when no zone does."""
    name = local_name()
    if name in IOT_ZONES:
        return IOT_ZONES.index(name)
    start = datetime.datetime(year, 1, 1, 12, tzinfo=datetime.timezone.utc)
    days = [start + datetime.timedelta(days=n) for n in range(0, 365)]
    here = [local_offset(day.timestamp()) for day in days]
    for index in range(len(IOT_ZONES)):
        candidate = iot_zone(index)
        if candidate is not None and all(
            int(day.astimezone(candidate).utcoffset().total_seconds()) // 60 == offset  # type: ignore[union-attr]
            for day, offset in zip(days, here)
        ):
            return index
    return None
