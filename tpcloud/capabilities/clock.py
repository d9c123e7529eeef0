"""The device's clock: what time it thinks it is, in which zone, how far that is from this
machine's, and setting it from this machine.

Schedules fire by the device's clock; a device kept off the internet drifts, and one that never
learnt its zone fires at the wrong hour. IOT devices keep a local wall time and a zone index in
``time`` (bulbs ``smartlife.iot.common.timesetting``): ``get_time``, ``get_timezone``, and
``set_timezone`` with both (softScheck's command list; python-kasa). SMART devices answer
``get_device_time`` with a unix ``timestamp``, ``time_diff`` (minutes east of UTC) and the zone
name (``region``), and take the same in ``set_device_time`` (python-kasa's ``set_time``).
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from tpcloud import zones
from tpcloud.capabilities import Send, lacking
from tpcloud.devices import Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import DeviceError, ProtocolError

WHAT = "clock"
IOT_MODULE, IOT_BULB_MODULE = "time", "smartlife.iot.common.timesetting"
# A clock further off than this is worth a warning: schedules fire by it.
DRIFT_WARNING_SECONDS = 60


@dataclass(frozen=True)
class DeviceClock:
    """The device's time (aware when its zone is known here), its zone's name, and DRIFT: how many
    seconds it is ahead of this machine (None when its zone is unknown, so it cannot be told).
    Devices tell whole seconds, so DRIFT is counted from this machine's whole second."""

    time: datetime.datetime
    zone: str | None
    drift: float | None
    synced: bool = False

    @property
    def off(self) -> bool:
        """Whether the clock is further off than a schedule can bear."""
        return self.drift is not None and abs(self.drift) > DRIFT_WARNING_SECONDS

    def to_dict(self) -> dict[str, Any]:
        offset = self.time.utcoffset()
        return {
            "time": self.time.isoformat(timespec="seconds"),
            "zone": self.zone,
            "utc_offset_minutes": None if offset is None else int(offset.total_seconds()) // 60,
            "drift_seconds": None if self.drift is None else round(self.drift),
            "synced": self.synced,
        }


class Clock(ABC):
    @abstractmethod
    async def read(self, send: Send, now: Callable[[], float]) -> DeviceClock:
        """The device's clock, set beside this machine's NOW() as the reply arrives."""

    @abstractmethod
    async def sync(self, send: Send, now: float) -> None: ...


class IotClock(Clock):
    def __init__(self, bulb: bool) -> None:
        self.module = IOT_BULB_MODULE if bulb else IOT_MODULE

    async def _call(self, send: Send, methods: dict[str, Any]) -> dict[str, Any]:
        with lacking(WHAT):
            body = iot.check(await send({self.module: methods})).get(self.module)
        return body if isinstance(body, dict) else {}

    async def _index(self, send: Send) -> int | None:
        return _zone_index((await self._call(send, {"get_timezone": {}})).get("get_timezone"))

    async def read(self, send: Send, now: Callable[[], float]) -> DeviceClock:
        body = await self._call(send, {"get_time": {}, "get_timezone": {}})
        arrived = int(now())
        told, zone_info = body.get("get_time"), body.get("get_timezone")
        try:
            wall = datetime.datetime(*(told[key] for key in ("year", "month", "mday", "hour", "min", "sec")))  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            raise ProtocolError(f"the device's {self.module}.get_time is not a date and time") from None
        index = _zone_index(zone_info)
        zone = zones.iot_zone(index) if index is not None else None
        if zone is None:
            return DeviceClock(wall, None, None)
        aware = wall.replace(tzinfo=zone)
        return DeviceClock(aware, zones.IOT_ZONES[index], aware.timestamp() - arrived)  # type: ignore[index]

    async def sync(self, send: Send, now: float) -> None:
        """This machine's zone where the device knows it (else the device keeps its own), and the
        time now in that zone."""
        year = datetime.datetime.fromtimestamp(now).year
        index = zones.iot_index_for_here(year)
        if index is None:
            index = await self._index(send)
        zone = zones.iot_zone(index) if index is not None else None
        if zone is None:
            raise DeviceError("neither this machine's time zone nor the device's is one tpcloud can set "
                              "(run with TZ set to a zone such as Europe/Berlin)")
        wall = datetime.datetime.fromtimestamp(now, zone)
        fields = {"year": wall.year, "month": wall.month, "mday": wall.day,
                  "hour": wall.hour, "min": wall.minute, "sec": wall.second, "index": index}
        await self._call(send, {"set_timezone": fields})


def _zone_index(zone_info: Any) -> int | None:
    """The zone index in an IOT ``get_timezone`` answer, or None."""
    index = zone_info.get("index") if isinstance(zone_info, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


class SmartClock(Clock):
    async def _call(self, send: Send, method: str, params: dict[str, Any] | None = None) -> Any:
        request: dict[str, Any] = {"method": method}
        if params is not None:
            request["params"] = params
        with lacking(WHAT):
            return smart.check(await send(request))

    async def read(self, send: Send, now: Callable[[], float]) -> DeviceClock:
        told = await self._call(send, "get_device_time")
        arrived = int(now())
        stamp = told.get("timestamp") if isinstance(told, dict) else None
        diff = told.get("time_diff") if isinstance(told, dict) else None
        if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
            raise ProtocolError("the device's get_device_time has no timestamp")
        region = told.get("region") if isinstance(told.get("region"), str) else None
        zone = zones.zone(region) or (
            datetime.timezone(datetime.timedelta(minutes=diff)) if isinstance(diff, int) else datetime.timezone.utc)
        return DeviceClock(datetime.datetime.fromtimestamp(stamp, zone), region or None, stamp - arrived)

    async def sync(self, send: Send, now: float) -> None:
        params: dict[str, Any] = {"timestamp": int(now), "time_diff": zones.local_offset(now)}
        name = zones.local_name()
        if name:
            params["region"] = name
        await self._call(send, "set_device_time", params)


def clock_of(target: Target) -> Clock:
    device = target.device
    return SmartClock() if device.dialect == "smart" else IotClock(bulb=device.is_bulb)


def exchange(now: Callable[[], float], sync: bool = False):
    """What `tpcloud time` runs: read the device's clock, after setting it from this machine (SYNC).
    An outlet's clock is its strip's: the request goes to the strip."""

    async def run(target: Target, send: Send) -> DeviceClock:
        clock = clock_of(target)
        if sync:
            await clock.sync(send, now())
        read = await clock.read(send, now)
        return DeviceClock(read.time, read.zone, read.drift, synced=sync)

    return run
