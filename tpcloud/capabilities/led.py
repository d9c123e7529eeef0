"""The status LED: read it, or switch it on or off.

IOT devices keep it in sysinfo as ``led_off`` (1 = dark, so the value is inverted) and set it
with ``system.set_led_off``; SMART devices use ``get_led_info`` / ``set_led_info`` with a rule
(``always``, ``never``, or a firmware mode such as ``night_mode``). Bulbs have no status LED.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from tpcloud.capabilities import Send, lacking
from tpcloud.devices import Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import NotSupported, ProtocolError, UsageError

WHAT = "status LED"


@dataclass(frozen=True)
class LedState:
    on: bool
    mode: str | None = None  # the SMART rule; IOT devices have none

    def to_dict(self) -> dict[str, Any]:
        return {"led": "on" if self.on else "off", "mode": self.mode}


class Led(ABC):
    """One dialect's way to the LED."""

    @abstractmethod
    async def read(self, send: Send) -> LedState: ...

    @abstractmethod
    async def write(self, send: Send, on: bool) -> LedState: ...


class IotLed(Led):
    async def read(self, send: Send) -> LedState:
        sysinfo = iot.sysinfo_of(await send(iot.sysinfo_request()))
        if "led_off" not in sysinfo:
            raise NotSupported(f"the device has no {WHAT}")
        return LedState(on=not sysinfo["led_off"])

    async def write(self, send: Send, on: bool) -> LedState:
        with lacking(WHAT):
            iot.check(await send({"system": {"set_led_off": {"off": int(not on)}}}))
        return LedState(on=on)


class SmartLed(Led):
    async def _settings(self, send: Send) -> dict[str, Any]:
        with lacking(WHAT):
            info = smart.check(await send({"method": "get_led_info"}))
        if not isinstance(info, dict) or not isinstance(info.get("led_rule"), str):
            raise ProtocolError("the device's get_led_info has no led_rule")
        return info

    async def read(self, send: Send) -> LedState:
        rule = (await self._settings(send))["led_rule"]
        return LedState(on=rule != "never", mode=rule)

    async def write(self, send: Send, on: bool) -> LedState:
        """The device's own LED settings go back with the new rule, night-mode times and brightness
        included, as python-kasa sends them to real devices; only ``led_rule`` changes."""
        rule = "always" if on else "never"
        settings = await self._settings(send)
        with lacking(WHAT):
            smart.check(await send({"method": "set_led_info", "params": {**settings, "led_rule": rule}}))
        return LedState(on=on, mode=rule)


IMPLEMENTATIONS: dict[str, Led] = {"iot": IotLed(), "smart": SmartLed()}


def exchange(on: bool | None):
    """What `tpcloud led` runs: read the LED (ON is None), or set it."""

    async def run(target: Target, send: Send) -> LedState:
        if target.outlet is not None:
            raise UsageError(f'the {WHAT} belongs to the whole strip: name "{target.device.alias}", not one outlet')
        led = IMPLEMENTATIONS[target.device.dialect]
        return await (led.read(send) if on is None else led.write(send, on))

    return run
