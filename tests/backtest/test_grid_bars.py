"""Time stops written in bars follow the run's interval, so one grid fits any market."""

from __future__ import annotations

import pytest

from quantbot.backtest.optimize.grid import default_grid, parse_grid
from quantbot.errors import GridError

MINUTE, DAY = 60_000, 86_400_000


def _holds(grid) -> list[int]:
    return [e.policy.max_hold_ms for e in grid.entries if e.family == "time_stop"]


def test_default_grid_on_one_minute_bars_is_the_original_grid():
    holds = sorted(set(_holds(default_grid(MINUTE))))
    assert holds == [m * MINUTE for m in (5, 10, 15, 30, 60, 120, 240, 2880)]
    assert "time_stop:hold5m" in default_grid(MINUTE).policy_ids
    assert len(default_grid(MINUTE)) == 594


def test_default_grid_on_daily_bars_holds_for_days():
    holds = sorted(set(_holds(default_grid(DAY))))
    assert holds[:3] == [5 * DAY, 10 * DAY, 15 * DAY]
    assert "time_stop:hold5d" in default_grid(DAY).policy_ids
    assert not any(h < DAY for h in holds)  # nothing shorter than one bar


@pytest.mark.parametrize("text, bars", [("3bars", 3), ("1 bar", 1), (" 12 bars ", 12)])
def test_bars_in_a_grid_file(text, bars):
    grid = parse_grid({"families": {"t": [{"kind": "time_stop", "max_hold_ms": text}]}},
                      interval_ms=4 * 3_600_000)
    assert grid.entries[0].policy.max_hold_ms == bars * 4 * 3_600_000


def test_bars_without_an_interval_is_a_clear_error():
    with pytest.raises(GridError, match=r"grid\.families\.t\[0\]: max_hold_ms '3bars' is in bars"):
        parse_grid({"families": {"t": [{"kind": "time_stop", "max_hold_ms": "3bars"}]}})
