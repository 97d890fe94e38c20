"""A level no run ever hit keeps its type in ``all_paths`` (BOOLEAN / BIGINT, not VARCHAR)."""

from __future__ import annotations

from qbtest import make_run, rows

from quantbot.artifacts import catalog_all_runs, run_sql


def _types(catalog) -> dict[str, str]:
    table = run_sql(catalog, "SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'all_paths' AND column_name LIKE '%1_1x%'")
    return dict(zip(*table.to_pydict().values(), strict=True))


def test_an_unhit_level_is_typed_and_a_later_hit_reads_as_a_number(base_dir, catalog):
    missed = [dict(r, hit_1_1x=False, t_1_1x_ms=None) for r in rows("paths", 2)]
    make_run(base_dir, "path-only", artifacts={"paths": missed})
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert _types(catalog) == {"hit_1_1x": "BOOLEAN", "t_1_1x_ms": "BIGINT"}
    hit = [dict(r, hit_1_1x=True, t_1_1x_ms=1_700_000_000_500) for r in rows("paths", 1)]
    make_run(base_dir, "path-only", artifacts={"paths": hit})
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert _types(catalog) == {"hit_1_1x": "BOOLEAN", "t_1_1x_ms": "BIGINT"}
    got = run_sql(catalog, "SELECT max(t_1_1x_ms) + 1 AS t, count(*) FILTER (hit_1_1x) AS h "
                           "FROM all_paths").to_pylist()
    assert got == [{"t": 1_700_000_000_501, "h": 1}]
