"""Policy grid files: the built-in default, expansion rules, de-duplication, error messages."""

from __future__ import annotations

import json

import pytest

from quantbot.backtest.engine.policies import canonical_json, policy_id
from quantbot.backtest.optimize.grid import (
    GridError,
    default_grid,
    default_grid_json,
    load_grid,
    parse_grid,
)


def test_default_grid_has_the_original_families():
    grid = default_grid()
    sizes = grid.family_sizes()
    assert sizes == {"fixed_stop": 25, "time_stop": 32, "trailing_stop": 36, "ladder": 15,
                     "trailing_ladder": 108, "trailing_ladder_time": 108, "trailing_fixed": 135,
                     "ladder_trailing": 135}
    assert len(grid) == 594 and grid.duplicates == 0
    assert len(set(grid.policy_ids)) == len(grid)
    assert all(e.params == canonical_json(e.policy) and e.policy_id == policy_id(e.policy)
               for e in grid.entries)
    kinds = {e.family: e.policy.kind for e in grid.entries}
    assert kinds["trailing_ladder_time"] == "combo"
    combo = next(e.policy for e in grid.entries if e.family == "trailing_ladder_time")
    assert [p.kind for p in combo.policies] == ["trailing_stop", "ladder", "time_stop"]


def test_default_grid_json_is_package_data():
    data = default_grid_json()
    assert set(data) == {"description", "families"}
    assert parse_grid(json.dumps(data), 60_000).policy_ids == default_grid().policy_ids


def test_product_expands_in_key_order_with_constants():
    grid = parse_grid({"families": {"ts": {
        "kind": "trailing_stop", "hard_stop_pct": 0.2,
        "product": {"activation_pct": [0.1, 0.5], "trail_pct": [0.05, 0.1]}}}})
    assert grid.policy_ids == [
        "trailing_stop:act0.1:trail0.05:hs0.2", "trailing_stop:act0.1:trail0.1:hs0.2",
        "trailing_stop:act0.5:trail0.05:hs0.2", "trailing_stop:act0.5:trail0.1:hs0.2"]


def test_list_family_camel_case_durations_and_null_off():
    grid = parse_grid({"families": {
        "picked": [{"kind": "fixed_stop", "stopPct": 0.2, "takeProfitPct": None},
                   {"kind": "time_stop", "maxHoldMs": "90m"}],
        "holds": {"kind": "time_stop", "product": {"max_hold_ms": ["1h", 7_200_000],
                                                    "take_profit_pct": [None, 1]}}}})
    assert grid.policy_ids == ["fixed_stop:sl0.2", "time_stop:hold90m", "time_stop:hold1h",
                               "time_stop:hold1h:tp1", "time_stop:hold2h", "time_stop:hold2h:tp1"]
    assert grid.family_sizes() == {"picked": 2, "holds": 4}


def test_ladder_levels_are_a_list_of_candidate_level_lists():
    grid = parse_grid({"families": {"ladder": {"kind": "ladder", "product": {
        "levels": [[{"multiple": 2, "fraction": 1}],
                   [{"multiple": 1.5, "fraction": 0.5}, {"multiple": 3, "fraction": 0.5}]],
        "stop_pct": [0.1]}}}})
    assert grid.policy_ids == ["ladder:2x1:sl0.1", "ladder:1.5x0.5+3x0.5:sl0.1"]


def test_combo_is_the_product_of_its_parts_in_order():
    grid = parse_grid({"families": {
        "fs": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.2]}},
        "mix": {"combo": ["fs", {"kind": "time_stop", "product": {"max_hold_ms": ["1h", "2h"]}},
                          [{"kind": "trailing_stop", "trail_pct": 0.1}]]}}})
    mix = [e.policy_id for e in grid.entries if e.family == "mix"]
    assert mix == [
        "combo(fixed_stop:sl0.1|time_stop:hold1h|trailing_stop:trail0.1)",
        "combo(fixed_stop:sl0.1|time_stop:hold2h|trailing_stop:trail0.1)",
        "combo(fixed_stop:sl0.2|time_stop:hold1h|trailing_stop:trail0.1)",
        "combo(fixed_stop:sl0.2|time_stop:hold2h|trailing_stop:trail0.1)"]


def test_duplicates_are_kept_once_under_the_first_family():
    grid = parse_grid({"families": {
        "a": [{"kind": "fixed_stop", "stop_pct": 0.2}],
        "b": {"kind": "fixed_stop", "product": {"stop_pct": [0.2, 0.3]}}}})
    assert grid.policy_ids == ["fixed_stop:sl0.2", "fixed_stop:sl0.3"]
    assert [e.family for e in grid.entries] == ["a", "b"] and grid.duplicates == 1


def test_subset_keeps_family_order():
    grid = default_grid().subset(["ladder", "fixed_stop"])
    assert list(grid.family_sizes()) == ["fixed_stop", "ladder"] and len(grid) == 40
    with pytest.raises(GridError, match="unknown family 'nope'"):
        default_grid().subset(["nope"])


@pytest.mark.parametrize("obj, message", [
    ({}, 'must be a JSON object with a "families" object'),
    ({"families": {}}, "at least one family"),
    ({"families": {"a": [{"kind": "fixed_stop"}]}, "extra": 1}, "unknown key 'extra'"),
    ({"families": {"a": []}}, r"grid.families.a: an empty list"),
    ({"families": {"a": {"kind": "fixed_stop", "product": {"stop_pct": []}}}},
     r"grid.families.a.product.stop_pct: must be a non-empty list"),
    ({"families": {"a": {"kind": "fixed_stop", "product": {"stop_pct": 0.2}}}},
     r"grid.families.a.product.stop_pct: must be a non-empty list of values \(got 0.2\)"),
    ({"families": {"a": {"kind": "fixed_stop", "stop_pct": 0.1, "product": {"stop_pct": [0.2]}}}},
     "also given as a constant"),
    ({"families": {"a": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 1.5]}}}},
     r"grid.families.a\[1\] .*policy.stop_pct: must be >= 0 and < 1 \(got 1.5\)"),
    ({"families": {"a": {"stop_pct": 0.1}}}, "must be a list of policies, an object with kind"),
    ({"families": {"c": {"combo": ["missing"]}}}, r"grid.families.c.combo\[0\]: no family named"),
    ({"families": {"c": {"combo": [[{"kind": "fixed_stop"}]]}, "d": {"combo": ["c"]}}},
     "is itself a combo family"),
    ({"families": {"c": {"combo": [], }}}, "must be a non-empty list of parts"),
    ({"families": {"c": {"combo": [[{"kind": "fixed_stop"}]], "x": 1}}}, "unknown key 'x'"),
])
def test_mistakes_name_the_family_and_entry(obj, message):
    with pytest.raises(GridError, match=message):
        parse_grid(obj)


def test_load_grid_errors_name_the_file(tmp_path):
    bad = tmp_path / "grid.json"
    bad.write_text('{"families": {"a": [{"kind": "fixed_stop", "stop_pct": 2}]}}')
    with pytest.raises(GridError, match=rf"{bad}: grid.families.a\[0\]"):
        load_grid(bad)
    bad.write_text("{not json")
    with pytest.raises(GridError, match="not valid JSON"):
        load_grid(bad)
    with pytest.raises(GridError, match="cannot be read"):
        load_grid(tmp_path / "missing.json")


def test_load_grid_reads_a_user_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"description": "two stops", "families": {
        "fs": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.2]}}}}))
    grid = load_grid(path)
    assert grid.description == "two stops" and grid.policy_ids == ["fixed_stop:sl0.1",
                                                                    "fixed_stop:sl0.2"]
