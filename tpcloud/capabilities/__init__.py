"""Capabilities beyond on/off (light, energy, the status LED): one interface each, one
implementation per JSON dialect.

A capability builds its requests in the device's dialect, checks the replies and reads them into
a dialect-neutral result; the service carries the requests over its route rules
(``DeviceService.call``), so no capability knows about the cloud or the LAN. Each capability
module keeps its implementations in ``IMPLEMENTATIONS`` by dialect, so a new device family is
one more class there, not edits in the commands.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, TypeVar

from tpcloud.errors import DeviceError, DeviceLacks

if TYPE_CHECKING:
    from tpcloud.devices import Target

T = TypeVar("T")
# Sends one request of the device's own dialect (routed by the service) and returns the reply.
Send = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
# What a capability runs against one device: given the target and a `send`, its result.
Exchange = Callable[["Target", Send], Awaitable[T]]

# Codes with which devices say a module or method does not exist on them: IOT -1 (module) and
# -2 (method), SMART -1002 (method).
_ABSENT = frozenset({-1, -2, -1002})


def absent(exc: DeviceError, also: frozenset[int] = frozenset()) -> bool:
    """Whether the device refused because it has no such module or method (not for a bad value);
    ALSO: codes a capability knows some devices answer for a method they lack."""
    return exc.code in _ABSENT or exc.code in also


@contextmanager
def lacking(what: str, *, also: frozenset[int] = frozenset()) -> Iterator[None]:
    """Turn a device's "no such module/method" into "the device has no WHAT" (exit 5), not a bare code."""
    try:
        yield
    except DeviceError as exc:
        if not absent(exc, also):
            raise
        raise DeviceLacks(f"the device has no {what}", code=exc.code) from None


def addressed(target: "Target", send: Send) -> Send:
    """SEND, each request addressed to TARGET's outlet when it is one (IOT ``context``, SMART
    ``control_child``), for capabilities that work per outlet alike."""
    if target.outlet is None:
        return send
    from tpcloud import dialects

    dialect = dialects.for_device(target.device)

    async def to_outlet(request: dict[str, Any]) -> dict[str, Any]:
        return await send(dialect.for_outlet(request, target.outlet))

    return to_outlet
