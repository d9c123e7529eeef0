"""The SMART JSON dialect of Tapo and newer Kasa devices: requests per capability, reading replies.

Requests are ``{"method": M, "params": {...}}``; replies ``{"error_code": N, "result": {...}}``.
A strip's outlets are children reached through ``control_child``. Nicknames are base64 UTF-8.
The functions mirror ``dialects.iot`` so the service can use either without knowing which.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Sequence

from tpcloud.devices import Device, Outlet, decode_nickname
from tpcloud.errors import DeviceError, ProtocolError, TpcloudError

# What the devices' error codes mean (protocols.md §5), for the message.
_DEVICE_ERRORS = {
    -1002: "does not support this method",
    -1003: "could not decode the JSON request",
    -1008: "rejected the parameters",
    -1301: "is busy or rate-limiting requests",
}
# The most requests tpcloud puts in one multipleRequest: python-kasa's batch size
# (SmartProtocol.DEFAULT_MULTI_REQUEST_BATCH_SIZE), kept "as there can be a size limit".
_BATCH = 5


def envelope(request: dict[str, Any], terminal_uuid: str | None = None) -> dict[str, Any]:
    """The request as it goes on the wire, with the fields devices expect around it (some
    firmware answers -1012 without ``terminal_uuid``; an AES login is sent without one)."""
    wrapped = {**request, "request_time_milis": int(time.time() * 1000)}
    if terminal_uuid is not None:
        wrapped["terminal_uuid"] = terminal_uuid
    return wrapped


def error_code(reply: dict[str, Any]) -> int:
    """The reply's ``error_code`` (absent means success); a non-integer is a protocol error."""
    code = reply.get("error_code", 0)
    if not isinstance(code, int) or isinstance(code, bool):
        raise ProtocolError("the device sent a reply that is not a SMART response (its error_code is not an integer)")
    return code


def info_request() -> dict[str, Any]:
    return {"method": "get_device_info"}


def children_request() -> dict[str, Any]:
    return {"method": "get_child_device_list"}


def power_request(on: bool, *, bulb: bool = False, strip: bool = False) -> dict[str, Any]:
    """Power is one field of ``set_device_info`` for plugs, bulbs and outlets alike."""
    return {"method": "set_device_info", "params": {"device_on": bool(on)}}


def for_outlet(request: dict[str, Any], outlet: Outlet | None) -> dict[str, Any]:
    """Address REQUEST to one strip outlet through ``control_child`` (unless it already is)."""
    if outlet is None or request.get("method") == "control_child":
        return request
    return {"method": "control_child", "params": {"device_id": outlet.id, "requestData": request}}


def outlet_batches(wanted: dict[Outlet, bool]) -> list[tuple[dict[str, Any], list[Outlet]]]:
    """One ``multipleRequest`` of a ``control_child`` per outlet, each to the state it is WANTED in,
    five outlets at most (python-kasa's batch size), with the outlets each carries; an outlet left
    over alone is switched alone.

    A guess: peers that ran on strips nest the other way, a ``multipleRequest`` inside one
    ``control_child`` (python-kasa's ``_ChildProtocolWrapper``, plugp100, DaveGut's driver verified
    on a P306); none was seen sending ``control_child`` inside ``multipleRequest``. A strip that
    refuses it settles nothing (``settled``), and each outlet then goes alone.
    """
    outlets = list(wanted)
    chunks = [outlets[i:i + _BATCH] for i in range(0, len(outlets), _BATCH)]
    return [
        ({"method": "multipleRequest",
          "params": {"requests": [for_outlet(power_request(wanted[o]), o) for o in chunk]}}, chunk)
        for chunk in chunks
        if len(chunk) > 1
    ]


def settled(
    reply: Any, outlets: Sequence[Outlet], wanted: dict[Outlet, bool]
) -> dict[Outlet, TpcloudError | None]:
    """Each of OUTLETS whose ``control_child`` ran in REPLY (to an ``outlet_batches`` request), with
    the outlet's own answer: None, or the error it answered. Nothing for a reply with an error code,
    nor for an entry that failed or is missing (a multipleRequest stops at its first failure, as
    python-kasa's ``SmartProtocol`` says): those outlets go alone.

    The replies are ``{"method", "error_code", "result"}`` in ``result.responses`` (python-kasa);
    that a strip lists them in the order asked, every one being a ``control_child``, is a guess.
    """
    result = reply.get("result") if isinstance(reply, dict) and reply.get("error_code", 0) == 0 else None
    responses = result.get("responses") if isinstance(result, dict) else None
    if not isinstance(responses, list):
        return {}
    return {
        outlet: _failure(entry)
        for outlet, entry in zip(outlets, responses)
        if isinstance(entry, dict) and entry.get("method") == "control_child" and entry.get("error_code") == 0
    }


def _failure(reply: Any) -> TpcloudError | None:
    """The error REPLY carries (``check``), or None."""
    try:
        check(reply)
    except TpcloudError as exc:
        return exc
    return None


def check(reply: Any) -> Any:
    """The ``result`` of a reply (unwrapping ``control_child``); DeviceError for an error code."""
    if not isinstance(reply, dict):
        raise ProtocolError("the device sent a reply that is not a SMART response")
    code = error_code(reply)
    if code != 0:
        raise DeviceError(f"the device {_DEVICE_ERRORS.get(code, 'failed the request')} (error_code {code})", code=code)
    result = reply.get("result")
    if isinstance(result, dict) and isinstance(result.get("responseData"), dict):
        return check(result["responseData"])
    return result


async def read_state(send: Callable[[dict[str, Any]], Awaitable[Any]], outlet: Outlet | None = None) -> dict[str, Any]:
    """Device info, with the children listed for strips (whose parent has no ``device_on``)."""
    info = check(await send(info_request()))
    if not isinstance(info, dict):
        raise ProtocolError("the device's get_device_info has no result")
    if outlet is not None or "device_on" not in info:
        children = check(await send(children_request()))
        listed = children.get("child_device_list") if isinstance(children, dict) else None
        info = {**info, "children": listed if isinstance(listed, list) else []}
    return info


def _children(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The strip's child entries that are objects; firmware may send anything in their place."""
    children = info.get("children")
    return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []


def _position(child: dict[str, Any]) -> int:
    position = child.get("position")
    return position if isinstance(position, int) else 0


def outlets_of(info: dict[str, Any], device_id: str = "") -> list[Outlet]:
    return [
        Outlet(id=str(c["device_id"]), alias=decode_nickname(c.get("nickname", c["device_id"])))
        for c in sorted(_children(info), key=_position)
        if "device_id" in c
    ]


def _child(info: dict[str, Any], outlet: Outlet) -> dict[str, Any]:
    for child in _children(info):
        if child.get("device_id") == outlet.id:
            return child
    raise ProtocolError(f'the strip no longer reports the outlet "{outlet.alias}"')


def is_on(info: dict[str, Any], outlet: Outlet | None = None) -> bool:
    source = _child(info, outlet) if outlet is not None else info
    if "device_on" in source:
        return bool(source["device_on"])
    return any(bool(c.get("device_on")) for c in _children(source))


def summary(device: Device, info: dict[str, Any], outlet: Outlet | None = None) -> dict[str, Any]:
    """The facts `tpcloud state` shows, in the same shape as ``iot.summary``."""
    source = _child(info, outlet) if outlet is not None else info
    on = is_on(info, outlet)
    facts: dict[str, Any] = {
        "name": decode_nickname(source["nickname"]) if source.get("nickname") else (outlet.alias if outlet else device.alias),
        "on": on,
        "model": str(info.get("model") or device.model),
    }
    if isinstance(source.get("on_time"), int):
        facts["on_time"] = source["on_time"] if on else 0
    if outlet is None and on and isinstance(info.get("brightness"), int):
        facts["brightness"] = info["brightness"]
    if outlet is None and info.get("children"):
        facts["outlets"] = [
            {"name": o.alias, "on": is_on(info, o), "on_time": _child(info, o).get("on_time")}
            for o in outlets_of(info)
        ]
    return facts
