"""Candle checks (issue 10): duplicates (identical dropped with a note, conflicting refused
or resolved by file order), optional volume, and a fingerprint that ignores the notes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantbot.backtest.data.candle_set import DataNote
from quantbot.backtest.data.load import fingerprint_candles, load_candles
from quantbot.errors import DataError

MIN = 60_000
T0 = 1_767_614_400_000  # 2026-01-05T12:00:00Z
WINDOW = {"interval_ms": MIN, "horizon_ms": 10 * MIN, "pre_window_ms": 5 * MIN}
ALERTS = pa.table({"mint": ["A"], "alert_ts_ms": pa.array([T0 + 5 * MIN], pa.int64())})
HEADER = "mint,ts,open,high,low,close,volume"


def clean_rows() -> list[str]:
    return [f"A,{T0 + i * MIN},{1 + i},{2 + i},{0.5 + i},{1.5 + i},{10 + i}" for i in range(20)]


def write(tmp_path: Path, rows: list[str], name: str = "c.csv") -> Path:
    (tmp_path / name).write_text("\n".join([HEADER, *rows]) + "\n")
    return tmp_path / name


def test_identical_duplicates_are_dropped_with_one_note(tmp_path):
    rows = clean_rows()
    rows += [rows[3], rows[3], rows[7]]
    got = load_candles(write(tmp_path, rows), ALERTS, **WINDOW)
    clean = load_candles(write(tmp_path, clean_rows(), "clean.csv"), ALERTS, **WINDOW)
    assert got.ts_ms.tolist() == clean.ts_ms.tolist()
    assert fingerprint_candles(got) == fingerprint_candles(clean)
    assert clean.warnings == ()
    (note,) = got.warnings
    assert "3 identical duplicate row(s) of 2 (mint, ts) key(s) dropped" in note.message
    assert "first: mint 'A' at 2026-01-05T12:03:00Z" in note.message
    assert note.details == {"kind": "duplicate_candles", "rows_dropped": 3, "keys": 2,
                            "mint": "A", "ts_ms": T0 + 3 * MIN}


def test_conflicting_duplicates_are_refused_with_count_example_and_fix(tmp_path):
    rows = clean_rows()
    rows += [f"A,{T0 + 4 * MIN},9,9,9,9,9", f"A,{T0 + 8 * MIN},7,7,7,7,7", rows[2]]
    with pytest.raises(DataError) as err:
        load_candles(write(tmp_path, rows), ALERTS, **WINDOW)
    text = str(err.value)
    assert "\n" not in text
    assert "c.csv: 2 (mint, ts) key(s) have conflicting duplicate rows" in text
    assert ("first mint 'A' at 2026-01-05T12:04:00Z: open=5 high=6 low=4.5 close=5.5 volume=14 "
            "vs open=9 high=9 low=9 close=9 volume=9") in text
    assert "--duplicates first|last" in text


def file_order_winner(lines: list[str], policy: str) -> dict[int, tuple[float, ...]]:
    """Reference: per ts, the values of the first/last line with that ts, in file order."""
    out: dict[int, tuple[float, ...]] = {}
    for line in lines:
        _, ts, *values = line.split(",")
        if policy == "last" or int(ts) not in out:
            out[int(ts)] = tuple(float(v) for v in values)
    return out


@pytest.mark.parametrize("policy", ["first", "last"])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_first_and_last_keep_that_row_in_file_order(tmp_path, policy, kind):
    rows = clean_rows()
    rows.insert(2, f"A,{T0 + 6 * MIN},70,71,69,70.5,1")  # before the clean row of 6m
    rows += [f"A,{T0 + 6 * MIN},80,81,79,80.5,2", f"A,{T0 + 9 * MIN},90,91,89,90.5,3"]
    path = write(tmp_path, rows)
    if kind == "parquet":
        pq.write_table(pacsv.read_csv(path), tmp_path / "c.parquet")
        path = tmp_path / "c.parquet"
    got = load_candles(path, ALERTS, duplicates=policy, **WINDOW)
    want = file_order_winner(rows, policy)
    for i, ts in enumerate(got.ts_ms.tolist()):
        values = (got.open[i], got.high[i], got.low[i], got.close[i], got.volume[i])
        assert values == want[ts], ts
    (note,) = got.warnings
    assert f"kept the {policy} (source order)" in note.message and "2 (mint, ts) key(s)" in note.message


def test_volume_is_optional_and_nan(tmp_path):
    rows = [",".join(r.split(",")[:6]) for r in clean_rows()]
    (tmp_path / "c.csv").write_text("\n".join(["mint,ts,open,high,low,close", *rows]) + "\n")
    got = load_candles(tmp_path / "c.csv", ALERTS, **WINDOW)
    assert got.n_rows == 17 and np.isnan(got.volume).all()
    assert got.close.tolist() == [1.5 + i for i in range(17)]


def test_notes_do_not_enter_the_fingerprint(tmp_path):
    clean = load_candles(write(tmp_path, clean_rows()), ALERTS, **WINDOW)
    noted = dataclasses.replace(clean, warnings=(DataNote("x", {"n": 1}),))
    assert fingerprint_candles(noted) == fingerprint_candles(clean)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.lists(st.integers(0, 19), min_size=1, max_size=12), seed=st.integers(0, 2**32 - 1))
def test_identical_duplicates_never_depend_on_row_order(tmp_path_factory, extra, seed):
    base = clean_rows()
    rows = base + [base[i] for i in extra]
    shuffled = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
    folder = tmp_path_factory.mktemp("dups")
    ordered = load_candles(write(folder, rows, "a.csv"), ALERTS, **WINDOW)
    mixed = load_candles(write(folder, shuffled, "b.csv"), ALERTS, **WINDOW)
    assert fingerprint_candles(mixed) == fingerprint_candles(ordered)
    assert [n.details["rows_dropped"] for n in mixed.warnings] == \
        [n.details["rows_dropped"] for n in ordered.warnings]
    loaded_extra = sum(1 for i in extra if T0 + i * MIN <= T0 + 16 * MIN)
    assert sum(n.details["rows_dropped"] for n in ordered.warnings) == loaded_extra


def reference_rows(candles: list[int], alerts: list[int], pre: int, horizon: int,
                   interval: int) -> set[int]:
    """Plain-Python reference of the candles ``load_candles`` documents for one mint: each
    alert's own window, and past a hole the entry + horizon and the first candle after it."""
    reach, loaded = horizon + interval, set()
    for t in alerts:
        loaded |= {c for c in candles if t - pre <= c <= t + reach}
        inside = [c for c in candles if t <= c <= t + reach]
        later = [c for c in candles if c >= t + reach]
        anchor = min(inside) if inside else min(later, default=None)
        if anchor is None:
            continue
        need, own_end = anchor + horizon, t + reach
        if need <= own_end and any(need <= c <= own_end for c in candles):
            continue
        end = max(need, min((c for c in candles if c >= need), default=need))
        loaded |= {c for c in candles if max(anchor, own_end) <= c <= end}
    return loaded


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(holes=st.lists(st.tuples(st.integers(25, 110), st.integers(1, 12)), max_size=4),
       alerts=st.lists(st.integers(0, 130), min_size=1, max_size=6))
def test_holes_and_overlapping_windows_load_each_candle_once(tmp_path_factory, holes, alerts):
    missing = {m for start, length in holes for m in range(start, start + length)}
    minutes = [m for m in range(120) if m not in missing]  # minutes 0..24 always present
    folder = tmp_path_factory.mktemp("holes")
    path = write(folder, [f"A,{T0 + m * MIN},1,2,0.5,1.5,1" for m in minutes])
    times = [T0 + 10 * MIN] + [T0 + a * MIN + 7_000 for a in alerts]
    table = pa.table({"mint": ["A"] * len(times), "alert_ts_ms": pa.array(times, pa.int64())})
    got = load_candles(path, table, interval_ms=MIN, horizon_ms=5 * MIN, pre_window_ms=3 * MIN)
    want = reference_rows([T0 + m * MIN for m in minutes], times, 3 * MIN, 5 * MIN, MIN)
    assert got.ts_ms.tolist() == sorted(want)
    assert got.warnings == ()  # windows that overlap never look like duplicates
