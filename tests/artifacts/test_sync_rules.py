"""Extra columns follow one rule whatever the order of runs: an incremental sync in any
batches and a rebuild from scratch give identical catalogs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from catalog_compare import catalog_tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qbtest import feature_row, make_run

from quantbot.artifacts import catalog_all_runs, run_sql

_TYPES = {"int32": pa.int32(), "int64": pa.int64(), "double": pa.float64(),
          "string": pa.string(), "bool": pa.bool_(), "null": pa.string()}


def _value(typ: str, i: int) -> Any:
    return {"int32": i - 1, "int64": 2**40 + i, "double": i / 4, "string": f"s{i}",
            "bool": i % 2 == 0, "null": None}[typ]


def _features_run(base: Path, extras: dict[str, str], n: int = 2) -> str:
    """A run whose features artifact has ``extras`` {column: type name} besides its own."""
    base_rows = [feature_row(i) for i in range(n)]
    cols: dict[str, pa.Array] = {k: pa.array([r[k] for r in base_rows]) for k in base_rows[0]}
    for name, typ in extras.items():
        cols[name] = pa.array([_value(typ, i) for i in range(n)], _TYPES[typ])
    return make_run(base, artifacts={"features": pa.table(cols)}).run_id


def _rebuild(base: Path, tmp: Path) -> Path:
    fresh = tmp / "rebuilt.duckdb"
    fresh.unlink(missing_ok=True)
    catalog_all_runs(catalog=fresh, base_dir=base)
    return fresh


def test_case_variants_share_one_column_spelled_the_same_either_way(tmp_path: Path):
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    lower = _features_run(base, {"score": "double"})
    assert catalog_all_runs(catalog=db, base_dir=base).registered == 1
    upper = _features_run(base, {"Score": "double"})
    report = catalog_all_runs(catalog=db, base_dir=base)
    assert report.registered == 1 and not report.invalid
    got = run_sql(db, 'SELECT run_id, "Score" FROM all_features ORDER BY run_id, "Score"')
    assert got.column_names == ["run_id", "Score"]  # the smallest spelling, whichever came first
    assert sorted(got.column("run_id").to_pylist()) == sorted([lower, lower, upper, upper])
    assert catalog_tables(db) == catalog_tables(_rebuild(base, tmp_path))


def test_double_then_text_is_text_in_both_paths(tmp_path: Path):
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    _features_run(base, {"note": "double"})
    assert catalog_all_runs(catalog=db, base_dir=base).registered == 1
    _features_run(base, {"note": "string"})
    assert catalog_all_runs(catalog=db, base_dir=base).registered == 1
    types = run_sql(db, "SELECT data_type FROM information_schema.columns "
                        "WHERE table_name = 'artifact_features' AND column_name = 'note'")
    assert types.column(0).to_pylist() == ["VARCHAR"]
    notes = run_sql(db, "SELECT note FROM all_features ORDER BY note").column(0).to_pylist()
    assert notes == ["0.0", "0.25", "s0", "s1"]
    assert catalog_tables(db) == catalog_tables(_rebuild(base, tmp_path))


def test_a_run_with_columns_equal_ignoring_case_is_invalid_in_both_paths(tmp_path: Path):
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    _features_run(base, {"x": "double"})
    bad = _features_run(base, {"Score": "double", "score": "double"})
    builtin = _features_run(base, {"Volume_Spike": "double"})
    for target in (db, tmp_path / "again.duckdb"):
        report = catalog_all_runs(catalog=target, base_dir=base)
        reasons = dict(report.invalid)
        assert report.registered == 1 and len(reasons) == 2
        assert "columns Score and score differ only in case" in reasons[next(p for p in reasons if bad in p)]
        assert "Volume_Spike and volume_spike" in reasons[next(p for p in reasons if builtin in p)]


def test_many_changes_at_once_rewrite_the_table_to_the_same_result(tmp_path: Path):
    # > 16 schema changes in one batch take the one-statement rewrite instead of ALTERs
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    _features_run(base, {"score": "double", **{f"c{i}": "int32" for i in range(20)}})
    assert catalog_all_runs(catalog=db, base_dir=base).registered == 1
    _features_run(base, {"Score": "string", "c0": "int64", **{f"d{i}": "bool" for i in range(20)}})
    assert catalog_all_runs(catalog=db, base_dir=base).registered == 1
    got = run_sql(db, "SELECT column_name, data_type FROM information_schema.columns "
                      "WHERE table_name = 'all_features' AND column_name IN ('Score', 'c0', 'd7')")
    assert sorted(zip(*got.to_pydict().values(), strict=True)) == [
        ("Score", "VARCHAR"), ("c0", "BIGINT"), ("d7", "BOOLEAN")]
    assert catalog_tables(db) == catalog_tables(_rebuild(base, tmp_path))


_NAMES = st.sampled_from(["score", "Score", "SCORE", "x", "X", "é", "É"])
_RUN = st.dictionaries(_NAMES, st.sampled_from(sorted(_TYPES)), max_size=3)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=st.lists(_RUN, min_size=1, max_size=6), cuts=st.sets(st.integers(1, 5)))
def test_incremental_batches_and_rebuild_give_identical_catalogs(runs: list[dict[str, str]],
                                                                  cuts: set[int]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="qb-rules-"))
    try:
        base, db = tmp / "runs", tmp / "cat.duckdb"
        for i, extras in enumerate(runs):
            _features_run(base, extras)
            if i + 1 in cuts or i + 1 == len(runs):  # sync after each random batch
                catalog_all_runs(catalog=db, base_dir=base)
        assert catalog_tables(db) == catalog_tables(_rebuild(base, tmp))
    finally:
        shutil.rmtree(tmp)
