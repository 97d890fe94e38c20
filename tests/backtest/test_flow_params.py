"""FlowParams: defaults that follow the interval, levels, entries and the entry-delay limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.backtest.flows.params import FlowParams, auto_horizon_ms, parse_levels
from quantbot.errors import FlowParameterError

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


@pytest.mark.parametrize("interval, horizon", [("1m", "1d"), ("15m", "1d"), ("1h", "1d"),
                                               ("4h", "80h"), ("1d", "20d"), ("7d", "140d")])
def test_default_horizon_follows_the_interval(interval, horizon):
    assert FlowParams(interval=interval).horizon == horizon


@given(st.integers(min_value=1, max_value=40 * DAY))
def test_auto_horizon_is_whole_bars_and_at_least_a_day_and_20_bars(interval_ms):
    h = auto_horizon_ms(interval_ms)
    assert h % interval_ms == 0 and h >= DAY and h >= 20 * interval_ms
    assert h - interval_ms < max(DAY, 20 * interval_ms)  # the smallest such multiple


def test_pre_window_in_bars_follows_the_interval():
    assert FlowParams().pre_window_ms == HOUR  # 60 one-minute bars, as before
    assert FlowParams(interval="1d").pre_window_ms == 60 * DAY
    assert FlowParams(interval="1d", pre_window="5bars").pre_window == "5d"
    assert FlowParams(interval="1h", pre_window="90m").pre_window_ms == 90 * MIN
    with pytest.raises(FlowParameterError, match="pre_window 'soon'"):
        FlowParams(pre_window="soon")


def test_entry_delay_defaults_to_the_data_and_can_be_off():
    auto = FlowParams(interval="1h")
    assert auto.max_entry_delay == FlowParams(interval="1h", max_entry_delay=" Auto").max_entry_delay
    with pytest.raises(ValueError, match="derived from the candles"):
        auto.max_entry_delay_ms  # noqa: B018 - known once the data is loaded
    assert auto.with_entry_delay(49 * HOUR).max_entry_delay == "50h"  # one bar + the gap
    assert auto.with_entry_delay(HOUR).max_entry_delay_ms == 2 * HOUR  # gap-free: two bars
    fixed = FlowParams(interval="1d", max_entry_delay="3d")
    assert fixed.with_entry_delay(DAY) is fixed
    assert FlowParams(interval="1d", max_entry_delay="3d").max_entry_delay_ms == 3 * DAY
    assert FlowParams(max_entry_delay="none").max_entry_delay_ms is None
    assert FlowParams(interval="1d", max_entry_delay="4bars").max_entry_delay == "4d"


def test_entry_modes():
    assert FlowParams(entry="next-open").entry == "next-open"
    with pytest.raises(FlowParameterError, match="entry 'open': expected one of close, next-open"):
        FlowParams(entry="open")


@pytest.mark.parametrize("given_, expected", [("2,3,4", (2.0, 3.0, 4.0)),
                                              (" 1.05, 1.1 ,1.2", (1.05, 1.1, 1.2)),
                                              ((3, 2), (3.0, 2.0)), ([1.5], (1.5,))])
def test_levels(given_, expected):
    assert parse_levels(given_) == expected
    assert FlowParams(levels=given_).manifest_parameters(False)["levels"] == list(expected)


@pytest.mark.parametrize("bad, words", [("2,x", "'x' is not a number"), ("1,2", "'1' must be"),
                                        ("2,2", "listed twice"), ("", "is not a number"),
                                        ("inf", "must be a multiple > 1"), ("1e7", "< 1e6")])
def test_bad_levels_are_one_line_errors(bad, words):
    with pytest.raises(FlowParameterError, match=words):
        FlowParams(levels=bad)


def test_manifest_of_a_run_before_these_options_reruns_as_it_ran():
    old = {"interval": "1m", "horizon": "24h", "horizon_ms": DAY, "activity_move_pct": 0.1,
           "pre_window": "1h", "taker_fee_bps": 30.0, "slippage_bps": 10.0}
    params = FlowParams.from_parameters(old)
    assert (params.entry, params.levels, params.max_entry_delay) == ("close", (2.0, 3.0, 4.0),
                                                                      "none")
    again = FlowParams.from_parameters(params.manifest_parameters(True))
    assert again == params
