"""Runs with different truth-layer levels share one cross-run view (schema evolution)."""

from __future__ import annotations

import pytest
from qbtest import make_run, rows

from quantbot.artifacts import catalog_all_runs, run_sql
from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, level_column_suffix
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.convert import conform
from quantbot.errors import SchemaMismatchError


@pytest.mark.parametrize("level, suffix", [(2.0, "2"), (1.05, "1_05"), (2.5, "2_5"),
                                           (10.0, "10"), (1.1, "1_1")])
def test_level_column_suffix(level, suffix):
    assert level_column_suffix(level) == suffix


def test_paths_accept_level_columns_only():
    spec = ARTIFACT_SPECS[ArtifactType.PATHS]
    ok = [dict(r, hit_1_05x=True, t_1_05x_ms=5) for r in rows("paths", 2)]
    table = conform(ok, spec, "r1")
    assert table.schema.field("hit_1_05x").type.equals(spec.schema.field("hit_2x").type)
    assert table.column("t_1_05x_ms").to_pylist() == [5, 5]
    with pytest.raises(SchemaMismatchError, match="unknown column hit_fast"):
        conform([dict(r, hit_fast=True) for r in rows("paths", 1)], spec, "r1")
    with pytest.raises(SchemaMismatchError, match="t_1_05x_ms"):
        conform([dict(r, t_1_05x_ms="soon") for r in rows("paths", 1)], spec, "r1")


def test_all_paths_unions_the_level_columns_of_every_run(base_dir, catalog):
    plain = make_run(base_dir, "path-only", artifacts={"paths": rows("paths", 2)})
    small = make_run(base_dir, "path-only", artifacts={"paths": [
        dict(r, hit_1_05x=True, t_1_05x_ms=1_700_000_000_500, hit_1_1x=False, t_1_1x_ms=None)
        for r in rows("paths", 3)]})
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 2 and report.invalid == []
    got = run_sql(catalog, "SELECT run_id, count(*) AS n, count(hit_1_05x) AS h105, "
                           "count(t_1_1x_ms) AS t11, count(hit_2x) AS h2 "
                           "FROM all_paths GROUP BY 1 ORDER BY n").to_pylist()
    assert got == [{"run_id": plain.run_id, "n": 2, "h105": 0, "t11": 0, "h2": 2},
                   {"run_id": small.run_id, "n": 3, "h105": 3, "t11": 0, "h2": 3}]
