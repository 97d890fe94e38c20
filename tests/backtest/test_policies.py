"""Policy parsing: aliases, validation messages, canonical JSON and ids."""

from __future__ import annotations

import json

import pytest

from quantbot.backtest.engine.policies import (
    Combo,
    FixedStop,
    Ladder,
    TimeStop,
    TrailingStop,
    canonical_json,
    parse_policy,
    policy_id,
)
from quantbot.errors import PolicyError


def test_snake_and_camel_case_give_the_same_policy():
    camel = parse_policy({"kind": "trailing_stop", "activationPct": 0.2, "trailPct": 0.1, "hardStopPct": 0.3})
    snake = parse_policy('{"kind": "trailing_stop", "activation_pct": 0.2, "trail_pct": 0.1, "hard_stop_pct": 0.3}')
    assert camel == snake and isinstance(camel, TrailingStop)
    assert parse_policy({"kind": "fixed_stop", "stopPct": 0.2, "takeProfitPct": 1}) == FixedStop(
        stop_pct=0.2, take_profit_pct=1.0)
    assert parse_policy({"kind": "time_stop", "maxHoldMs": 3_600_000}).max_hold_ms == 3_600_000


def test_absent_zero_and_null_mean_off():
    p = parse_policy({"kind": "fixed_stop", "stop_pct": None})
    assert p.stop_pct == 0.0 and p.take_profit_pct == 0.0
    assert parse_policy({"kind": "trailing_stop", "trail_pct": 0.1}).activation_pct == 0.0


def test_durations_for_max_hold():
    assert parse_policy({"kind": "time_stop", "max_hold_ms": "6h"}).max_hold_ms == 6 * 3_600_000
    assert parse_policy({"kind": "time_stop", "max_hold_ms": "90s"}).max_hold_ms == 90_000
    assert parse_policy({"kind": "time_stop", "max_hold_ms": "5d"}).max_hold_ms == 5 * 86_400_000


@pytest.mark.parametrize("obj, message", [
    ({"kind": "trailing_stop", "trail_pct": 1.5}, "policy.trail_pct: must be > 0 and < 1 (got 1.5)"),
    ({"kind": "trailing_stop", "trailPct": 0}, "policy.trail_pct: must be > 0 and < 1 (got 0.0)"),
    ({"kind": "trailing_stop"}, "policy.trail_pct: required"),
    ({"kind": "fixed_stop", "stop_pct": 1.0}, "policy.stop_pct: must be >= 0 and < 1 (got 1.0)"),
    ({"kind": "fixed_stop", "take_profit_pct": -0.1}, "policy.take_profit_pct: must be >= 0 (got -0.1)"),
    ({"kind": "fixed_stop", "take_profit_pct": float("inf")}, "policy.take_profit_pct: must be >= 0 (got inf)"),
    ({"kind": "fixed_stop", "stop": 0.1}, "policy.stop: unknown field"),
    ({"kind": "time_stop", "max_hold_ms": 0}, "policy.max_hold_ms: must be > 0 (got 0)"),
    ({"kind": "time_stop", "max_hold_ms": "6x"},
     "policy.max_hold_ms: not a duration like 90s, 15m, 6h, 5d (got '6x')"),
    ({"kind": "ladder", "levels": [{"multiple": 2, "fraction": 0.6}, {"multiple": 3, "fraction": 0.5}]},
     "policy.levels: fractions must sum to <= 1 (got 1.1)"),
    ({"kind": "ladder", "levels": [{"multiple": 0.5, "fraction": 0.5}]},
     "policy.levels[0].multiple: must be > 1 (got 0.5)"),
    ({"kind": "ladder", "levels": [{"multiple": 2, "fraction": 0}]},
     "policy.levels[0].fraction: must be > 0 and <= 1 (got 0.0)"),
    ({"kind": "combo", "policies": [{"kind": "fixed_stop"}, {"kind": "trailing_stop", "trail_pct": 2}]},
     "policy.policies[1].trail_pct: must be > 0 and < 1 (got 2.0)"),
    ({"kind": "nope"}, "policy.kind: must be one of fixed_stop, time_stop, trailing_stop, ladder, combo (got 'nope')"),
    ({"stop_pct": 0.1}, "policy.kind: must be one of fixed_stop, time_stop, trailing_stop, ladder, combo (missing)"),
    ("{not json", "policy: not valid JSON (Expecting property name enclosed in double quotes at char 1)"),
    ("[1]", "policy: must be a JSON object with a kind (got list)"),
])
def test_validation_errors_are_one_clear_line(obj, message):
    with pytest.raises(PolicyError) as info:
        parse_policy(obj)
    assert str(info.value) == message and "\n" not in str(info.value)


def test_canonical_json_is_sorted_snake_case_and_compact():
    a = parse_policy({"takeProfitPct": 1, "kind": "fixed_stop", "stopPct": 0.2})
    b = parse_policy({"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0})
    assert canonical_json(a) == canonical_json(b) == '{"kind":"fixed_stop","stop_pct":0.2,"take_profit_pct":1.0}'
    assert parse_policy(canonical_json(a)) == a
    combo = {"kind": "combo", "policies": [{"kind": "ladder", "levels": [{"multiple": 2, "fraction": 1}]}]}
    assert json.loads(canonical_json(combo))["policies"][0]["levels"] == [{"fraction": 1.0, "multiple": 2.0}]


@pytest.mark.parametrize("obj, expected", [
    ({"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1}, "fixed_stop:sl0.2:tp1"),
    ({"kind": "fixed_stop"}, "fixed_stop"),
    ({"kind": "time_stop", "max_hold_ms": "6h", "take_profit_pct": 0.5}, "time_stop:hold6h:tp0.5"),
    ({"kind": "time_stop", "max_hold_ms": 90_500}, "time_stop:hold90500ms"),
    ({"kind": "trailing_stop", "activation_pct": 0.5, "trail_pct": 0.2, "hard_stop_pct": 0.3},
     "trailing_stop:act0.5:trail0.2:hs0.3"),
    ({"kind": "ladder", "levels": [{"multiple": 2, "fraction": 0.5}, {"multiple": 3, "fraction": 0.5}],
      "stop_pct": 0.3}, "ladder:2x0.5+3x0.5:sl0.3"),
    ({"kind": "combo", "policies": [{"kind": "fixed_stop", "stop_pct": 0.2},
                                    {"kind": "time_stop", "max_hold_ms": "6h"}]},
     "combo(fixed_stop:sl0.2|time_stop:hold6h)"),
])
def test_policy_id_is_readable(obj, expected):
    assert policy_id(obj) == expected


def test_policy_id_is_lossless():
    assert policy_id({"kind": "fixed_stop", "stop_pct": 0.1234567891}) != policy_id(
        {"kind": "fixed_stop", "stop_pct": 0.1234567892})


def test_models_are_returned_unchanged():
    p = Combo(policies=[Ladder(levels=[{"multiple": 2, "fraction": 1}]), TimeStop(max_hold_ms=60_000)])
    assert parse_policy(p) is p
