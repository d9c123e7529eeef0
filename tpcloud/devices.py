"""The account's devices as tpcloud sees them, and how a name on the command line finds one.

A device comes from the cloud's device list (identity, model, appServerUrl) plus what the device
itself told us (a strip's outlets). A NAME is an alias (any case), a deviceId, an outlet's own
alias, or "STRIP/OUTLET".
"""

from __future__ import annotations

import base64
import binascii
import difflib
from typing import Any, Iterable, NamedTuple

from tpcloud.errors import NameNotFound

# The Kasa light strips, by model prefix (KL400L5, KL400L10, KL420L5, KL430).
LIGHT_STRIP_MODELS = ("KL400", "KL420", "KL430")


def is_light_strip_model(model: str) -> bool:
    """Whether MODEL (``KL430(US)``, any case) is a Kasa light strip."""
    return model.strip().upper().startswith(LIGHT_STRIP_MODELS)


def dialect_name(device_type: str) -> str:
    """"iot" for IOT.*, "smart" for SMART.*, "" for anything else."""
    prefix = device_type.strip().upper().split(".", 1)[0]
    return {"IOT": "iot", "SMART": "smart"}.get(prefix, "")


def decode_nickname(value: Any) -> str:
    """A SMART name (base64 of UTF-8) as text; a value that is not one is kept as it is."""
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return str(value)


def decode_alias(alias: str, device_type: str) -> str:
    """Tapo (SMART) aliases arrive base64-encoded UTF-8; Kasa aliases are plain text."""
    return decode_nickname(alias) if dialect_name(device_type) == "smart" else alias


class Outlet(NamedTuple):
    """One socket of a power strip: its child id and its own alias."""

    id: str
    alias: str


class Device(NamedTuple):
    """One device of the account."""

    device_id: str
    alias: str
    model: str
    device_type: str
    online: bool
    app_server_url: str
    mac: str = ""
    firmware: str = ""
    hardware: str = ""
    outlets: tuple[Outlet, ...] = ()

    @property
    def dialect(self) -> str:
        """"smart" for Tapo and newer Kasa devices, "iot" for the legacy Kasa JSON."""
        return "smart" if dialect_name(self.device_type) == "smart" else "iot"

    @property
    def is_bulb(self) -> bool:
        return "BULB" in self.device_type.upper()

    @property
    def is_light_strip(self) -> bool:
        """A Kasa light strip (KL400, KL420, KL430): a bulb to the cloud, whose light is another module.

        The cloud lists a strip as a bulb (``IOT.SMARTBULB``), and it is one in everything but its
        light: power and colour go to ``smartlife.iot.lightStrip`` (``set_light_state``), which a
        strip has instead of the bulbs' lighting service. Only the model tells the two apart in the
        cloud's list, so the rule here is a bulb whose model is a strip's: every route knows the
        model before the device is asked, and switching a strip costs no extra read. Where the
        sysinfo is read anyway (``tpcloud light``), ``iot.is_light_strip`` also takes a sysinfo
        with ``length`` (the strip's length, which only strips report) for a strip, so a
        strip model missing from ``LIGHT_STRIP_MODELS`` is still lit the right way there.
        """
        return self.is_bulb and is_light_strip_model(self.model)

    @classmethod
    def from_cloud(cls, entry: dict[str, Any]) -> "Device":
        """A device from one entry of the cloud's ``deviceList``."""
        device_type = str(entry.get("deviceType") or "")
        return cls(
            device_id=str(entry.get("deviceId") or ""),
            alias=decode_alias(str(entry.get("alias") or ""), device_type),
            model=str(entry.get("deviceModel") or entry.get("deviceName") or ""),
            device_type=device_type,
            online=entry.get("status") == 1,
            app_server_url=str(entry.get("appServerUrl") or ""),
            mac=str(entry.get("deviceMac") or ""),
            firmware=str(entry.get("fwVer") or ""),
            hardware=str(entry.get("deviceHwVer") or ""),
        )

    def with_outlets(self, outlets: Iterable[Outlet]) -> "Device":
        return self._replace(outlets=tuple(outlets))

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "alias": self.alias,
            "model": self.model,
            "device_type": self.device_type,
            "online": self.online,
            "app_server_url": self.app_server_url,
            "mac": self.mac,
            "firmware": self.firmware,
            "hardware": self.hardware,
            "outlets": [{"id": o.id, "alias": o.alias} for o in self.outlets],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Device":
        outlets = tuple(Outlet(id=str(o["id"]), alias=str(o["alias"])) for o in data.get("outlets", ()))
        return cls(**{**{k: data[k] for k in data if k != "outlets"}, "outlets": outlets})


class Target(NamedTuple):
    """What a name resolved to: a device, or one outlet of a strip."""

    device: Device
    outlet: Outlet | None = None

    @property
    def name(self) -> str:
        """The name to show the user."""
        return self.outlet.alias if self.outlet else self.device.alias

    @property
    def full_name(self) -> str:
        """A name that is unique in the account ("STRIP/OUTLET" for outlets)."""
        return f"{self.device.alias}/{self.outlet.alias}" if self.outlet else self.device.alias

    def identity(self) -> dict[str, Any]:
        """How JSON output names a target."""
        return {
            "name": self.full_name,
            "device_id": self.device.device_id,
            "outlet_id": self.outlet.id if self.outlet else None,
        }


def _targets(devices: Iterable[Device]) -> list[Target]:
    result = []
    for device in devices:
        result.append(Target(device))
        result.extend(Target(device, outlet) for outlet in device.outlets)
    return result


def resolve(devices: Iterable[Device], name: str) -> Target:
    """The one target NAME means; NameNotFound (with candidates or close matches) otherwise."""
    targets = _targets(devices)
    wanted = name.strip().casefold()
    if not wanted:
        raise NameNotFound("a device name cannot be empty")
    by_id = [t for t in targets if (t.outlet.id if t.outlet else t.device.device_id).casefold() == wanted]
    if by_id:
        return by_id[0]
    matches = [t for t in targets if t.name.casefold() == wanted or t.full_name.casefold() == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(f'"{t.full_name}" ({t.outlet.id if t.outlet else t.device.device_id})' for t in matches)
        raise NameNotFound(
            f'"{name}" matches {len(matches)} devices: {listed}',
            hint='use "STRIP/OUTLET" or the device id to pick one',
        )
    known = {t.full_name: t for t in targets} | {t.name: t for t in targets}
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    close += [n for n in known if wanted in n.casefold() and n not in close][: 3 - len(close)]
    hint = ("did you mean " + " or ".join(f'"{n}"' for n in close) + "?") if close else "run `tpcloud list` to see the names"
    raise NameNotFound(f'no device named "{name}" in this account', hint=hint)
