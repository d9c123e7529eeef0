"""Pictures made of text: horizontal bars and sparklines in Unicode block characters.

Bars grow in eighths of a character cell (``▏`` to ``█``), so a bar chart as wide as a phone's
terminal still tells 0.31 kWh from 0.30. Both start at zero: a day of half the energy is half
the bar, and a meter's small wobbles do not fill a sparkline's whole height.
"""

from __future__ import annotations

from typing import Optional, Sequence

FULL = "█"
# A cell filled by 1/8 .. 7/8, left to right.
EIGHTHS = "▏▎▍▌▋▊▉"
SPARKS = "▁▂▃▄▅▆▇█"


def bar(value: float, top: float, width: int) -> str:
    """VALUE as a bar on a scale where TOP fills WIDTH cells: whole cells, then the nearest eighth
    of one (nothing for zero or less)."""
    if top <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = round(min(value, top) / top * width * 8)
    whole, part = divmod(eighths, 8)
    return FULL * whole + (EIGHTHS[part - 1] if part else "")


def sparkline(values: Sequence[Optional[float]], width: int) -> str:
    """VALUES as at most WIDTH characters of ``▁▂▃▄▅▆▇█``, from zero (``▁``) to the largest (``█``).

    More values than WIDTH are averaged in WIDTH runs of neighbours, oldest first; fewer get a
    character each. None (a reading missing) is a space, and so is a run of nothing but None.
    """
    if width <= 0 or not values:
        return ""
    count = len(values)
    runs = [values[i * count // width:(i + 1) * count // width] for i in range(width)] if count > width else [[v] for v in values]
    means = [_mean(run) for run in runs]
    top = max((m for m in means if m is not None), default=0.0)
    return "".join(" " if m is None else SPARKS[_level(m, top)] for m in means)


def _mean(run: Sequence[Optional[float]]) -> Optional[float]:
    known = [v for v in run if v is not None]
    return sum(known) / len(known) if known else None


def _level(value: float, top: float) -> int:
    """Which of the eight heights VALUE is, TOP being the highest."""
    if top <= 0 or value <= 0:
        return 0
    return min(len(SPARKS) - 1, round(value / top * (len(SPARKS) - 1)))
