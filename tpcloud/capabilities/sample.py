"""One look at a device or outlet: whether it is on, and what its meter reads where it has one.

What `metrics` collects from every device in one pass: a plug without a meter still says it is
up and whether it is on, so a dead plug and an idle one are told apart.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from tpcloud import dialects
from tpcloud.capabilities import Send, energy
from tpcloud.devices import Target
from tpcloud.errors import NotSupported


@dataclass(frozen=True)
class Sample:
    """ON, and the meter's READING (None for a device without a meter)."""

    on: bool
    reading: energy.Reading | None

    def to_dict(self) -> dict[str, Any]:
        return {"on": self.on, "meter": None if self.reading is None else self.reading.to_dict()}


def sample(today: datetime.date):
    """The exchange: the state, then the meter (TODAY: which day is "today" for its energy)."""

    async def run(target: Target, send: Send) -> Sample:
        dialect = dialects.for_device(target.device)
        on = dialect.is_on(await dialect.read_state(send, target.outlet), target.outlet)
        try:
            reading = await energy.reading(today)(target, send)
        except NotSupported:
            reading = None
        return Sample(on, reading)

    return run
