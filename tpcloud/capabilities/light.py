"""Lights: brightness, colour temperature, colour (hue and saturation) and a transition time.

Kasa bulbs use ``smartlife.iot.smartbulb.lightingservice`` ``transition_light_state``, Kasa light
strips the same fields in ``smartlife.iot.lightStrip`` ``set_light_state`` (their lighting effects
and segments are left alone), Kasa dimmers ``smartlife.iot.dimmer`` (``set_brightness``, or
``set_dimmer_transition`` to fade), Tapo bulbs (and SMART dimmers) ``set_device_info``. Every
change also switches the light on. Values are checked against what the light says it can do (its
sysinfo or device info) before it is asked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from tpcloud.capabilities import Send
from tpcloud.devices import Target
from tpcloud.dialects import iot, smart
from tpcloud.errors import ProtocolError, UsageError

DIMMER = "smartlife.iot.dimmer"
# Kasa bulbs do not report their colour temperature range: these are the models' own (as
# python-kasa lists them), by model prefix; another model gets the range every one of them has.
_KELVIN = {
    "KL120(US)": (2700, 5000), "KL120(EU)": (2700, 6500), "LB120": (2700, 6500), "KL125": (2500, 6500),
    "KL135": (2500, 9000), "KL130": (2500, 9000), "LB130": (2500, 9000), "LB230": (2500, 9000),
    "KB130": (2500, 9000), "KL400L5": (2500, 9000), "KL420": (2500, 9000), "KL430": (2500, 9000),
}
_COMMON_KELVIN = (2700, 5000)
# The longest --transition accepted (ms): an hour, for a slow sunrise.
MAX_TRANSITION = 3_600_000
_STATIC_RANGES = {"brightness": (1, 100), "hue": (0, 360), "saturation": (0, 100), "transition": (0, MAX_TRANSITION)}


@dataclass(frozen=True)
class Change:
    """What `tpcloud light` was asked to set; None = leave as it is."""

    brightness: int | None = None
    color_temp: int | None = None
    hue: int | None = None
    saturation: int | None = None
    transition: int | None = None

    def check(self) -> None:
        """The checks that need no device: something to set, ranges every light shares, no conflict."""
        if (self.brightness, self.color_temp, self.hue, self.saturation) == (None,) * 4:
            raise UsageError("nothing to set: give --brightness, --temp, or --hue and --saturation")
        if self.color_temp is not None and (self.hue, self.saturation) != (None, None):
            raise UsageError("--temp sets white light and --hue/--saturation a colour: give one or the other")
        for field, (low, high) in _STATIC_RANGES.items():
            value = getattr(self, field)
            if value is not None and not low <= value <= high:
                raise UsageError(f"--{field} must be {low}-{high}, not {value}")


@dataclass(frozen=True)
class LightState:
    """The light after the change (None: the light does not have that setting)."""

    on: bool
    brightness: int | None = None
    color_temp: int | None = None
    hue: int | None = None
    saturation: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, on: bool, values: dict[str, Any]) -> "LightState":
        """From a reply's light fields (integers only; anything else counts as absent)."""
        known = {k: v for k in ("brightness", "color_temp", "hue", "saturation")
                 if isinstance(v := values.get(k), int) and not isinstance(v, bool)}
        return cls(on=on, **known)


@dataclass(frozen=True)
class Abilities:
    """What a light can do, as its state reply says."""

    model: str
    dimmable: bool
    color: bool
    temp_range: tuple[int, int] | None
    transition: bool

    def check(self, change: Change) -> None:
        """CHANGE is within what this light can do; else a usage error naming what it can."""
        if change.brightness is not None and not self.dimmable:
            raise UsageError(f"--brightness: this {self.model} cannot be dimmed")
        if (change.hue, change.saturation) != (None, None) and not self.color:
            raise UsageError(f"--hue/--saturation: this {self.model} has no colour (it takes --brightness"
                             + (" and --temp)" if self.temp_range else ")"))
        if change.color_temp is not None:
            if self.temp_range is None:
                raise UsageError(f"--temp: this {self.model} has no adjustable colour temperature")
            low, high = self.temp_range
            if not low <= change.color_temp <= high:
                raise UsageError(f"--temp {change.color_temp} is out of range: {low}-{high} K on this {self.model}")
        if change.transition is not None and not self.transition:
            raise UsageError(f"--transition: this {self.model} takes no transition time")


def _not_a_light(model: str) -> UsageError:
    return UsageError(f"this {model} is not a light (light works with bulbs, light strips and dimmers)")


class Light(ABC):
    """One dialect's (or kind's) way to a light: read what it is, check, then change it."""

    async def apply(self, send: Send, change: Change) -> LightState:
        info = await self.read(send)
        self.abilities(info).check(change)
        return await self.write(send, info, change)

    @abstractmethod
    async def read(self, send: Send) -> dict[str, Any]: ...

    @abstractmethod
    def abilities(self, info: dict[str, Any]) -> Abilities: ...

    @abstractmethod
    async def write(self, send: Send, info: dict[str, Any], change: Change) -> LightState: ...


def _colour(change: Change, has_temp: bool) -> dict[str, int]:
    """The light fields of CHANGE; a colour also leaves white mode (colour temperature 0)."""
    fields = {k: v for k, v in (("brightness", change.brightness), ("color_temp", change.color_temp),
                                ("hue", change.hue), ("saturation", change.saturation)) if v is not None}
    if has_temp and ("hue" in fields or "saturation" in fields):
        fields["color_temp"] = 0
    return fields


def _settings_when_on(light_state: dict[str, Any]) -> dict[str, Any]:
    """A Kasa light's settings for when it is on: its light state, or (while off) its dft_on_state."""
    if light_state.get("on_off"):
        return light_state
    default = light_state.get("dft_on_state")
    return default if isinstance(default, dict) else {}


class IotLight(Light):
    """Kasa bulbs (lighting service), light strips (light strip module) and dimmers (dimmer module),
    told apart by their sysinfo."""

    async def read(self, send: Send) -> dict[str, Any]:
        return iot.sysinfo_of(await send(iot.sysinfo_request()))

    def abilities(self, info: dict[str, Any]) -> Abilities:
        model = str(info.get("model") or "device")
        if isinstance(info.get("light_state"), dict):
            temp = next((r for prefix, r in _KELVIN.items() if model.startswith(prefix)), _COMMON_KELVIN)
            return Abilities(model, bool(info.get("is_dimmable")), bool(info.get("is_color")),
                             temp if info.get("is_variable_color_temp") else None, transition=True)
        if isinstance(info.get("brightness"), int):
            return Abilities(model, dimmable=True, color=False, temp_range=None, transition=True)
        raise _not_a_light(model)

    async def write(self, send: Send, info: dict[str, Any], change: Change) -> LightState:
        if isinstance(info.get("light_state"), dict):
            return await self._bulb(send, info, change)
        return await self._dimmer(send, change)

    @staticmethod
    async def _bulb(send: Send, info: dict[str, Any], change: Change) -> LightState:
        """A bulb or a light strip: the same fields, sent to the light's own module."""
        service = iot.light_service(strip=iot.is_light_strip(info))
        params = {"on_off": 1, "ignore_default": 1, **_colour(change, bool(info.get("is_variable_color_temp")))}
        if change.transition is not None:
            params["transition_period"] = change.transition
        state = service.reply(iot.check(await send(service.request(params))))
        if not isinstance(state, dict):
            raise ProtocolError("the light's reply has no light state")
        if "on_off" not in state:  # a reply that only says it worked: the light as it was, changed as asked
            state = {**_settings_when_on(info["light_state"]), **params}
        return LightState.of(bool(state.get("on_off")), state)

    @staticmethod
    async def _dimmer(send: Send, change: Change) -> LightState:
        brightness = change.brightness  # given: a dimmer takes no other setting (Abilities.check)
        if change.transition is not None:  # fades from off too: no relay switching needed
            request = {DIMMER: {"set_dimmer_transition": {"brightness": brightness, "duration": change.transition}}}
        else:  # brightness first, so the relay does not light up at the old level
            request = {DIMMER: {"set_brightness": {"brightness": brightness}}, "system": {"set_relay_state": {"state": 1}}}
        iot.check(await send(request))
        return LightState(on=True, brightness=brightness)


class SmartLight(Light):
    """Tapo bulbs, and SMART dimmers: every setting is a field of ``set_device_info``."""

    async def read(self, send: Send) -> dict[str, Any]:
        info = smart.check(await send(smart.info_request()))
        if not isinstance(info, dict):
            raise ProtocolError("the device's get_device_info has no result")
        return info

    def abilities(self, info: dict[str, Any]) -> Abilities:
        model = str(info.get("model") or "device")
        if "brightness" not in info:
            raise _not_a_light(model)
        listed = info.get("color_temp_range")
        temp = None
        if "color_temp" in info:
            valid = isinstance(listed, list) and len(listed) == 2 and all(isinstance(v, int) for v in listed)
            temp = (listed[0], listed[1]) if valid else _COMMON_KELVIN
        return Abilities(model, dimmable=True, color="hue" in info, temp_range=temp, transition=False)

    async def write(self, send: Send, info: dict[str, Any], change: Change) -> LightState:
        params = {"device_on": True, **_colour(change, "color_temp" in info)}
        smart.check(await send({"method": "set_device_info", "params": params}))
        return LightState.of(True, {**info, **params})


IMPLEMENTATIONS: dict[str, Light] = {"iot": IotLight(), "smart": SmartLight()}


def exchange(change: Change):
    """What `tpcloud light` runs (CHANGE already passed its own `check`)."""

    async def run(target: Target, send: Send) -> LightState:
        if target.outlet is not None:
            raise _not_a_light("strip outlet")
        return await IMPLEMENTATIONS[target.device.dialect].apply(send, change)

    return run
