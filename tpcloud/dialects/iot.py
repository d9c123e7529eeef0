"""The legacy Kasa IOT JSON dialect: the request for each capability, and how to read replies.

Requests are plain dicts; whichever route carries them (cloud passthrough or the LAN) is not
this module's business. Replies nest ``{module: {method: {..., "err_code": N}}}``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, NamedTuple, Sequence

from tpcloud.devices import Device, Outlet, is_light_strip_model
from tpcloud.errors import DeviceError, ProtocolError, TpcloudError

BULB_SERVICE = "smartlife.iot.smartbulb.lightingservice"
STRIP_SERVICE = "smartlife.iot.lightStrip"

_DEVICE_ERRORS = {-1: "does not support this module", -2: "does not support this method", -3: "rejected the request"}


def sysinfo_request() -> dict[str, Any]:
    return {"system": {"get_sysinfo": {}}}


class LightService(NamedTuple):
    """The module and method that set a Kasa light (power, brightness, colour, fade)."""

    module: str
    method: str

    def request(self, params: dict[str, Any]) -> dict[str, Any]:
        return {self.module: {self.method: params}}

    def reply(self, reply: dict[str, Any]) -> Any:
        """The method's part of a (checked) REPLY to ``request``."""
        methods = reply.get(self.module)
        return methods.get(self.method) if isinstance(methods, dict) else None


# Bulbs and light strips take the same fields (on_off, brightness, hue, saturation, color_temp,
# transition_period, ignore_default) in different modules; a strip has no lighting service.
BULB_LIGHT = LightService(BULB_SERVICE, "transition_light_state")
STRIP_LIGHT = LightService(STRIP_SERVICE, "set_light_state")


def light_service(*, strip: bool) -> LightService:
    return STRIP_LIGHT if strip else BULB_LIGHT


def is_light_strip(sysinfo: dict[str, Any]) -> bool:
    """Whether SYSINFO is a light strip's: it reports a ``length``, or its model is a strip's
    (``Device.is_light_strip`` says why the model is the rule where no sysinfo is at hand)."""
    return "length" in sysinfo or is_light_strip_model(str(sysinfo.get("model") or ""))


def power_request(on: bool, *, bulb: bool, strip: bool = False) -> dict[str, Any]:
    """Switch a plug, strip outlet or dimmer (relay), a bulb or a light strip (its light) on or off.

    A light switched on with nothing else asked comes back as its own "default on" setting says
    (``ignore_default`` 0, as python-kasa's ``iotbulb.py`` does: "we do not want to set
    ignore_default to ensure we restore the previous state"); switched off, or to a given light,
    the request's own values count (1).
    """
    if bulb or strip:
        return light_service(strip=strip).request({"on_off": int(on), "ignore_default": 0 if on else 1})
    return {"system": {"set_relay_state": {"state": int(on)}}}


def for_outlet(request: dict[str, Any], outlet: Outlet | None) -> dict[str, Any]:
    """Address REQUEST to one strip outlet (unless it already names its own context)."""
    if outlet is None or "context" in request:
        return request
    return {"context": {"child_ids": [outlet.id]}, **request}


def outlet_batches(wanted: dict[Outlet, bool]) -> list[tuple[dict[str, Any], list[Outlet]]]:
    """One request for each state two or more of a strip's outlets are WANTED in, with the outlets
    it names; outlets in none of them are switched alone.

    The request names them all in ``context.child_ids`` and asks for the sysinfo back in the same
    request, because its ``err_code`` proves nothing: an HS300 1.0 on firmware 1.0.6 switches every
    outlet named, an HS300 2.0 on 1.0.3 or 1.0.12 only the first, and both answer ``err_code`` 0
    (p-doyle/Python-KasaSmartPowerStrip#11, python-kasa#639, cloudkucooland/go-kasa#2). Only the
    sysinfo counts (``settled``).
    """
    by_state: dict[bool, list[Outlet]] = {}
    for outlet, on in wanted.items():
        by_state.setdefault(on, []).append(outlet)
    return [(_outlets_request(on, outlets), outlets) for on, outlets in by_state.items() if len(outlets) > 1]


def _outlets_request(on: bool, outlets: list[Outlet]) -> dict[str, Any]:
    return {
        "context": {"child_ids": [o.id for o in outlets]},
        "system": {"set_relay_state": {"state": int(on)}, "get_sysinfo": {}},
    }


def settled(
    reply: Any, outlets: Sequence[Outlet], wanted: dict[Outlet, bool]
) -> dict[Outlet, TpcloudError | None]:
    """Those of OUTLETS that the sysinfo in REPLY (to an ``outlet_batches`` request) shows as WANTED;
    the rest are not settled by it, whatever ``set_relay_state`` answered, and go alone.

    An HS300 2.0 answers such a request with both parts, in the order asked (go-kasa#2). That it
    reads the sysinfo after switching is a guess: if it read it before, the outlets it shows in
    the old state would only be switched once more, alone.
    """
    system = reply.get("system") if isinstance(reply, dict) else None
    sysinfo = system.get("get_sysinfo") if isinstance(system, dict) else None
    if not isinstance(sysinfo, dict) or sysinfo.get("err_code", 0) != 0:
        return {}
    shown = {outlet: _find_child(sysinfo, outlet) for outlet in outlets}
    return {o: None for o, child in shown.items() if child is not None and bool(child.get("state")) is wanted[o]}


def check(reply: Any) -> dict[str, Any]:
    """REPLY, if every module and method in it succeeded; DeviceError naming the first that failed."""
    if not isinstance(reply, dict):
        raise ProtocolError("the device sent a reply that is not a JSON object")
    for module, methods in reply.items():
        if not isinstance(methods, dict):
            continue
        failures = [(module, methods)] if "err_code" in methods else []
        failures += [(f"{module}.{m}", r) for m, r in methods.items() if isinstance(r, dict) and "err_code" in r]
        for where, body in failures:
            code = body.get("err_code")
            if code not in (0, None):
                known = _DEVICE_ERRORS.get(code) if isinstance(code, int) else None
                detail = body.get("err_msg") if isinstance(body.get("err_msg"), str) else known
                raise DeviceError(
                    f"the device {detail or 'failed'} ({where}, err_code {code})", code=code if isinstance(code, int) else None
                )
    return reply


def sysinfo_of(reply: dict[str, Any]) -> dict[str, Any]:
    """The ``get_sysinfo`` body of a checked reply."""
    system = check(reply).get("system")
    sysinfo = system.get("get_sysinfo") if isinstance(system, dict) else None
    if not isinstance(sysinfo, dict):
        raise ProtocolError("the device's reply has no system.get_sysinfo")
    return sysinfo


async def read_state(send: Callable[[dict[str, Any]], Awaitable[Any]], outlet: Outlet | None = None) -> dict[str, Any]:
    """The device's sysinfo, which carries a strip's outlets too."""
    return sysinfo_of(await send(sysinfo_request()))


def _children(sysinfo: dict[str, Any]) -> list[dict[str, Any]]:
    """The strip's child entries that are objects; firmware may send anything in their place."""
    children = sysinfo.get("children")
    return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []


def outlets_of(sysinfo: dict[str, Any], device_id: str) -> list[Outlet]:
    """A strip's outlets, with full child ids (some firmware reports only the two-digit suffix)."""
    outlets = []
    for child in _children(sysinfo):
        if "id" not in child:
            continue
        child_id = str(child["id"])
        if len(child_id) <= 2 and device_id:
            child_id = device_id + child_id.zfill(2)
        outlets.append(Outlet(id=child_id, alias=str(child.get("alias") or child_id)))
    return outlets


def _find_child(sysinfo: dict[str, Any], outlet: Outlet) -> dict[str, Any] | None:
    for child in _children(sysinfo):
        if (child.get("id") == outlet.id or outlet.id.endswith(str(child.get("id")))):
            return child
    return None


def _child(sysinfo: dict[str, Any], outlet: Outlet) -> dict[str, Any]:
    child = _find_child(sysinfo, outlet)
    if child is None:
        raise ProtocolError(f'the strip no longer reports the outlet "{outlet.alias}"')
    return child


def is_on(sysinfo: dict[str, Any], outlet: Outlet | None = None) -> bool:
    """Whether the device (or the outlet) is switched on, according to its sysinfo."""
    if outlet is not None:
        return bool(_child(sysinfo, outlet).get("state"))
    if isinstance(sysinfo.get("light_state"), dict):
        return bool(sysinfo["light_state"].get("on_off"))
    return bool(sysinfo.get("relay_state"))


def summary(device: Device, sysinfo: dict[str, Any], outlet: Outlet | None = None) -> dict[str, Any]:
    """The facts `tpcloud state` shows: power, model, on time, outlets, brightness."""
    facts: dict[str, Any] = {
        "name": outlet.alias if outlet else str(sysinfo.get("alias") or device.alias),
        "on": is_on(sysinfo, outlet),
        "model": str(sysinfo.get("model") or device.model),
    }
    source = _child(sysinfo, outlet) if outlet else sysinfo
    if isinstance(source.get("on_time"), int):
        facts["on_time"] = source["on_time"] if facts["on"] else 0
    light = sysinfo.get("light_state")
    if outlet is None and isinstance(light, dict) and light.get("on_off"):
        facts["brightness"] = light.get("brightness")
    elif outlet is None and isinstance(sysinfo.get("brightness"), int):
        facts["brightness"] = sysinfo["brightness"]
    if outlet is None and _children(sysinfo):
        facts["outlets"] = [
            {"name": str(c.get("alias")), "on": bool(c.get("state")), "on_time": c.get("on_time")}
            for c in _children(sysinfo)
        ]
    return facts
