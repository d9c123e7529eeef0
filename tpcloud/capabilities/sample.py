"""One look at a device or outlet: whether it is on, and what its meter reads where it has one.

`watch` and `wait` take one per sample, `metrics` one per device and pass: a plug without a
meter still says whether it is on, so a dead plug and an idle one are told apart.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from tpcloud import dialects
from tpcloud.capabilities import Send, energy
from tpcloud.devices import Target
from tpcloud.errors import NotSupported

if TYPE_CHECKING:
    from tpcloud.capabilities import Exchange


@dataclass(frozen=True)
class Measured:
    """What one look read: when its reply came (AT, wall clock), ON (None where the state was not
    asked), and the meter's READING (None where it was not asked, or there is no meter)."""

    at: float
    on: bool | None
    reading: energy.Reading | None


def measuring(wall: Callable[[], float], *, state: bool = True, power: bool = True,
              unmetered: set[Target] | None = None) -> "Exchange[Measured]":
    """The exchange: the target's STATE (on when any outlet of a strip named whole is) and its
    meter's reading (POWER), stamped by WALL. Given UNMETERED, a target found to have no meter
    reads None, is added to it, and is asked its state alone from then on; without it, no meter
    is the error it is."""

    async def run(target: Target, send: Send) -> Measured:
        on = None
        if state:
            dialect = dialects.for_device(target.device)
            facts = dialect.summary(target.device, await dialect.read_state(send, target.outlet), target.outlet)
            outlets = facts.get("outlets")
            on = any(o["on"] for o in outlets) if outlets else bool(facts["on"])
        now = None
        if power and not (unmetered is not None and target in unmetered):
            try:
                now = await energy.reading(datetime.date.fromtimestamp(wall()))(target, send)
            except NotSupported:
                if unmetered is None:
                    raise
                unmetered.add(target)
        return Measured(wall(), on, now)

    return run
