"""Golden tests of quantbot.analysis.stats on small hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from quantbot.analysis.stats import detect_regressions, metric_spread, pareto_front, pareto_mask


def test_pareto_mask_golden() -> None:
    # x = stop-out rate (lower is better), y = median return bps (higher is better)
    x = [0.10, 0.20, 0.30, 0.20, 0.10, 0.05, float("nan"), 0.50]
    y = [100., 300., 250., 300., 50., 20., 999., 400.]
    # 0: best at x=.10; 1 and 3 identical (both kept); 2 dominated by 1; 4 dominated by 0;
    # 5 lowest x; 6 NaN never on the front; 7 highest y.
    assert pareto_mask(x, y).tolist() == [True, True, False, True, False, True, False, True]


def test_pareto_mask_equal_x_keeps_only_best_y_and_directions() -> None:
    assert pareto_mask([0.1, 0.1, 0.2], [5.0, 7.0, 7.0]).tolist() == [False, True, False]
    # maximize x, minimize y: the mirror image
    assert pareto_mask([1, 2, 3], [1, 2, 0], minimize_x=False, maximize_y=False).tolist() == [
        False, False, True]
    assert pareto_mask([], []).tolist() == []
    with pytest.raises(ValueError, match="differ in length"):
        pareto_mask([1, 2], [1])


def test_pareto_front_arrow_and_pandas_sorted_by_x() -> None:
    rows = {"policy_id": ["a", "b", "c", "d"], "stop_out_rate": [0.4, 0.1, 0.2, 0.3],
            "median_return_bps": [900.0, 100.0, 50.0, 600.0]}
    front = pareto_front(pa.table(rows))
    assert isinstance(front, pa.Table)
    assert front.column("policy_id").to_pylist() == ["b", "d", "a"]
    front_pd = pareto_front(pd.DataFrame(rows))
    assert isinstance(front_pd, pd.DataFrame)
    assert front_pd["policy_id"].tolist() == ["b", "d", "a"]
    with pytest.raises(KeyError, match="nope"):
        pareto_front(pa.table(rows), x="nope")


BASE = {"policy_id": ["p1", "p2", "p3"], "median_return_bps": [100.0, 200.0, 50.0],
        "stop_out_rate": [0.30, 0.20, 0.10], "avg_tail_capture": [0.5, None, 0.2]}
CUR = {"policy_id": ["p1", "p2", "p4"], "median_return_bps": [70.0, 205.0, 10.0],
       "stop_out_rate": [0.25, 0.26, 0.10], "avg_tail_capture": [0.5, 0.4, 0.2]}
TOL = {"median_return_bps": 10.0, "stop_out_rate": 0.02, "avg_tail_capture": 0.01}


def test_detect_regressions_golden() -> None:
    out = detect_regressions(pa.table(BASE), pa.table(CUR), on=["policy_id"], tolerances=TOL)
    got = [(r["policy_id"], r["metric"], r["status"]) for r in out.to_pylist()]
    assert got == [
        ("p1", "median_return_bps", "regressed"),   # -30 bps
        ("p1", "stop_out_rate", "improved"),        # -0.05, lower is better
        ("p2", "stop_out_rate", "regressed"),       # +0.06; +5 bps return within tolerance
        ("p2", "avg_tail_capture", "improved"),     # null -> value
        ("p3", None, "missing"),
        ("p4", None, "new"),
    ]
    first = out.to_pylist()[0]
    assert first["baseline"] == 100.0 and first["current"] == 70.0
    assert first["delta"] == -30.0 and first["tolerance"] == 10.0


def test_detect_regressions_all_rows_and_pandas() -> None:
    out = detect_regressions(pd.DataFrame(BASE), pd.DataFrame(CUR), on=["policy_id"],
                             tolerances=TOL, only_changes=False)
    assert isinstance(out, pd.DataFrame)
    p2 = out[(out.policy_id == "p2") & (out.metric == "median_return_bps")].iloc[0]
    assert p2.status == "ok" and p2.delta == 5.0
    assert len(out) == 2 * 3 + 2


def test_detect_regressions_tolerance_is_inclusive_and_keys_unique() -> None:
    base = pa.table({"k": ["a"], "m": [100.0]})
    assert detect_regressions(base, pa.table({"k": ["a"], "m": [110.0]}), on=["k"],
                              tolerances={"m": 10.0}).num_rows == 0
    assert detect_regressions(base, pa.table({"k": ["a"], "m": [110.5]}), on=["k"],
                              tolerances={"m": 10.0}).column("status").to_pylist() == ["improved"]
    assert detect_regressions(base, pa.table({"k": ["a"], "m": [math.nan]}), on=["k"],
                              tolerances={"m": 10.0}).column("status").to_pylist() == ["regressed"]
    with pytest.raises(ValueError, match="not unique"):
        detect_regressions(pa.table({"k": ["a", "a"], "m": [1.0, 2.0]}), base, on=["k"],
                           tolerances={"m": 1.0})
    with pytest.raises(KeyError, match="no column 'x'"):
        detect_regressions(base, base, on=["k"], tolerances={"x": 1.0})


def test_metric_spread_golden() -> None:
    table = pa.table({"caller_name": ["a", "a", "a", "b", "b", "c"],
                      "run_id": ["r1", "r2", "r3", "r1", "r2", "r1"],
                      "v": [1.0, 4.0, np.nan, 2.0, 2.0, 5.0]})
    rows = metric_spread(table, group="caller_name", value="v").to_pylist()
    assert [r["caller_name"] for r in rows] == ["a", "b", "c"]
    assert rows[0] == {"caller_name": "a", "runs": 2, "min": 1.0, "max": 4.0, "mean": 2.5,
                       "spread": 3.0, "std": 1.5}
    assert rows[1]["spread"] == 0.0 and rows[2]["runs"] == 1
