"""Bars and sparklines (tpcloud/charts.py), and the history chart made of them."""

from __future__ import annotations

import pytest

from tpcloud.capabilities.energy import ARCHIVE, DEVICE, History
from tpcloud.charts import EIGHTHS, FULL, SPARKS, bar, sparkline
from tpcloud.output import history_text


def test_bars_grow_in_eighths_of_a_cell():
    assert bar(10, 10, 4) == FULL * 4
    assert bar(5, 10, 4) == FULL * 2
    assert bar(1, 10, 4) == "▍"  # 3.2 eighths -> 3
    assert bar(9.5, 10, 4) == FULL * 3 + "▊"  # 30.4 eighths -> 30: three cells and 6/8
    assert bar(9.9, 10, 4) == FULL * 4  # 31.7 -> 32, the nearest eighth
    assert [bar(n, 8, 1) for n in range(9)] == ["", *EIGHTHS, FULL]


@pytest.mark.parametrize("value, top, width", [(0, 10, 5), (-1, 10, 5), (3, 0, 5), (3, 10, 0)])
def test_nothing_to_draw(value, top, width):
    assert bar(value, top, width) == ""


def test_a_bar_never_outgrows_its_width():
    assert bar(20, 10, 5) == FULL * 5
    assert all(len(bar(v / 7, 1, 13)) <= 13 for v in range(8))


def test_a_sparkline_from_zero_to_the_largest():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8) == SPARKS
    assert sparkline([60, 61, 62], 10) == "███"  # small wobbles stay small: the scale starts at 0
    assert sparkline([0, 0], 5) == "▁▁" and sparkline([], 5) == "" and sparkline([1, 2], 0) == ""


def test_a_sparkline_averages_runs_of_values_into_its_width():
    line = sparkline([0] * 50 + [10] * 50, 10)
    assert len(line) == 10 and line == "▁" * 5 + "█" * 5
    assert len(sparkline(list(range(1000)), 37)) == 37


def test_a_missing_reading_is_a_space():
    assert sparkline([4, None, 8], 3) == "▅ █"
    assert sparkline([None, None], 1) == " "


def history(*figures, sources=()):
    return History("daily", 2025, 5, tuple((f"2025-05-{n + 1:02d}", kwh) for n, kwh in enumerate(figures)), sources)


def test_a_history_chart_fills_the_width_given():
    text = history_text("Kettle", history(0.31, 0.275, 0.0), width=60).splitlines()
    assert text[0] == "Kettle: kWh per day in 2025-05" and text[-1] == "  total           0.585"
    assert max(len(line) for line in text) == 60 == len(text[1])
    assert text[1].endswith(FULL) and text[3] == "  2025-05-03      0.000"  # nothing to draw, no trailing space
    assert len(text[2]) < 60


def test_without_a_width_the_lines_are_the_plain_ones():
    assert history_text("Kettle", history(0.31, 0.275)).splitlines() == [
        "Kettle: kWh per day in 2025-05", "  2025-05-01      0.310", "  2025-05-02      0.275", "  total           0.585",
    ]


def test_figures_from_the_archive_are_marked_and_the_chart_stays_aligned():
    marked = history(0.31, 0.275, sources=(ARCHIVE, DEVICE))
    assert history_text("Kettle", marked).splitlines()[1:3] == ["  2025-05-01      0.310  archive", "  2025-05-02      0.275"]
    lines = history_text("Kettle", marked, width=50).splitlines()
    assert lines[1].index(FULL) == lines[2].index(FULL) and len(lines[1]) == 50


def test_a_terminal_too_narrow_for_bars_gets_the_numbers():
    assert history_text("Kettle", history(0.31), width=25) == history_text("Kettle", history(0.31))
