"""Schema evolution: older artifacts are upgraded when read; newer ones are refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from qbtest import trade_row

from quantbot.artifacts import catalog_all_runs, create_run_directory, run_sql
from quantbot.artifacts.schema import migrations
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.migrations import Migration, upgrade
from quantbot.artifacts.store.reader import read_artifact
from quantbot.errors import ManifestError, SchemaVersionError

OLD = Migration(
    "0.9.0", "1.0.0", frozenset({ArtifactType.TRADES}),
    renames={"return_bps": "realized_return_bps"},
    added=(pa.field("tail_capture", pa.float64()),),
    widened={"time_exposed_ms": pa.int64()},
)


def _rewrite_trades(run_dir: Path, table: pa.Table, version: str) -> None:
    """Replace a run's trades file by ``table`` written at ``version`` (as an old writer did)."""
    path = run_dir / "policy" / "trades.parquet"
    meta = {"artifact_type": "trades", "run_id": run_dir.name.split("=")[1],
            "rows": str(table.num_rows), "schema_version": version}
    pq.write_table(table.replace_schema_metadata(meta), path)
    manifest = json.loads((run_dir / "run.json").read_text())
    data = path.read_bytes()
    manifest["artifacts"]["trades"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (run_dir / "run.json").write_text(json.dumps(manifest))


def _old_trades(run_id: str, n: int = 3) -> pa.Table:
    rows = [trade_row(i) for i in range(n)]
    return pa.table({
        "run_id": [run_id] * n, "policy_id": [r["policy_id"] for r in rows],
        "call_id": [r["call_id"] for r in rows],
        "entry_ts_ms": [r["entry_ts_ms"] for r in rows], "entry_px": [r["entry_px"] for r in rows],
        "exit_ts_ms": [r["exit_ts_ms"] for r in rows], "exit_px": [r["exit_px"] for r in rows],
        "exit_reason": [r["exit_reason"] for r in rows],
        "return_bps": [r["realized_return_bps"] for r in rows],  # the old name
        "stop_out": [r["stop_out"] for r in rows],
        "max_adverse_excursion_bps": [r["max_adverse_excursion_bps"] for r in rows],
        "time_exposed_ms": pa.array([r["time_exposed_ms"] for r in rows], pa.int32()),  # narrower
    })  # no tail_capture column yet


@pytest.fixture
def old_run(base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(migrations, "MIGRATIONS", [OLD, *migrations.MIGRATIONS])
    with create_run_directory("policy", base_dir=base_dir, git=False) as run:
        run.write_artifact("trades", [trade_row(i) for i in range(3)])
    run_dir = Path(run.path)
    _rewrite_trades(run_dir, _old_trades(run.run_id), "0.9.0")
    return run_dir


def test_upgrade_applies_rename_widening_and_new_column():
    table = upgrade(_old_trades("r"), ArtifactType.TRADES, "0.9.0", [OLD])
    assert "realized_return_bps" in table.column_names and "return_bps" not in table.column_names
    assert table.schema.field("time_exposed_ms").type == pa.int64()
    assert table.column("tail_capture").null_count == 3


def test_read_artifact_returns_current_schema(old_run: Path):
    table = read_artifact(old_run, "trades")
    assert table.schema.remove_metadata().equals(ArtifactType.TRADES.spec.schema)
    assert table.column("realized_return_bps").to_pylist() == [100.0, 101.0, 102.0]
    assert table.column("side").to_pylist() == ["long"] * 3  # 1.2.0: older runs were long


@pytest.mark.parametrize("kind", [ArtifactType.ALERTS, ArtifactType.PATHS, ArtifactType.TRADES])
def test_side_of_a_1_1_0_file_reads_as_long(kind: ArtifactType):
    from qbtest import rows

    current = pa.Table.from_pylist(rows(kind.value, 2))
    old = current.drop_columns(["side"])
    upgraded = upgrade(old, kind, "1.1.0")
    assert upgraded.column("side").to_pylist() == ["long", "long"]
    assert upgraded.schema.field("side").type == pa.string()


def test_the_1_2_0_side_step_leaves_other_artifacts_alone():
    errors = pa.table({"x": [1]})
    assert upgrade(errors, ArtifactType.ERRORS, "1.1.0").column_names == ["x"]


@pytest.mark.parametrize("kind", [ArtifactType.SUMMARY, ArtifactType.FRONTIER])
def test_a_1_0_0_file_climbs_every_step(kind: ArtifactType):
    from qbtest import rows

    current = pa.Table.from_pylist(rows(kind.value, 1))
    new = {f.name for m in migrations.MIGRATIONS if kind in m.artifacts for f in m.added}
    assert new  # both gained columns since 1.0.0
    old = current.drop_columns([n for n in sorted(new) if n in current.column_names])
    upgraded = upgrade(old, kind, "1.0.0")
    assert set(kind.spec.schema.names) - {"run_id"} <= set(upgraded.column_names)


def test_sync_upgrades_old_runs_into_one_schema(old_run: Path, base_dir: Path, catalog: Path):
    with create_run_directory("policy", base_dir=base_dir, git=False) as new:
        new.write_artifact("trades", [trade_row(9)])
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 2 and report.invalid == []
    rows = run_sql(catalog, "SELECT run_id, count(*) AS n, count(tail_capture) AS tc, "
                            "sum(realized_return_bps) AS s FROM all_trades GROUP BY 1").to_pylist()
    by_run = {r["run_id"]: r for r in rows}
    old_id = old_run.name.split("=")[1]
    assert by_run[old_id] == {"run_id": old_id, "n": 3, "tc": 0, "s": 303.0}
    assert by_run[new.run_id]["tc"] == 1


def test_newer_artifact_version_is_refused(base_dir: Path, catalog: Path):
    with create_run_directory("policy", base_dir=base_dir, git=False) as run:
        run.write_artifact("trades", [trade_row(0)])
    table = pq.read_table(Path(run.path) / "policy" / "trades.parquet")
    _rewrite_trades(Path(run.path), table, "9.0.0")
    with pytest.raises(SchemaVersionError, match="newer than this quantbot supports"):
        read_artifact(run.path, "trades")
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 0
    assert "9.0.0" in report.invalid[0][1] and "newer" in report.invalid[0][1]


def test_newer_manifest_version_is_refused(base_dir: Path):
    from quantbot.artifacts import read_manifest

    with create_run_directory("policy", base_dir=base_dir, git=False) as run:
        pass
    manifest = json.loads((Path(run.path) / "run.json").read_text())
    manifest["schema_version"]["manifest"] = "2.0.0"
    (Path(run.path) / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="newer than this quantbot"):
        read_manifest(run.path)


def test_catalog_from_an_older_quantbot_grows_new_columns(base_dir: Path, catalog: Path):
    with create_run_directory("policy", base_dir=base_dir, git=False) as run:
        run.write_artifact("trades", [trade_row(0)])
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    con = duckdb.connect(str(catalog))
    con.execute("DROP VIEW all_trades")
    con.execute("ALTER TABLE artifact_trades DROP COLUMN tail_capture")  # as an old catalog had
    con.close()
    with create_run_directory("policy", base_dir=base_dir, git=False) as run2:
        run2.write_artifact("trades", [trade_row(1)])
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).registered == 1
    rows = run_sql(catalog, "SELECT run_id, tail_capture FROM all_trades ORDER BY tail_capture")
    assert rows.to_pylist() == [{"run_id": run2.run_id, "tail_capture": 0.5},
                                {"run_id": run.run_id, "tail_capture": None}]


def test_real_registry_upgrades_a_1_0_0_frontier(base_dir: Path, catalog: Path):
    """A frontier written by quantbot 1.0.0 (no validation columns) reads at the current schema."""
    from quantbot.artifacts.schema.arrow_schemas import FRONTIER_SCHEMA, FRONTIER_VALIDATION_FIELDS

    old_schema = pa.schema([f for f in FRONTIER_SCHEMA if f not in FRONTIER_VALIDATION_FIELDS])
    row = {"caller_name": "*", "policy_id": "p", "policy_params": "{}", "meets_constraints": True,
           "objective_score": 1.0, "avg_return_bps": 1.0, "median_return_bps": 1.0,
           "stop_out_rate": 0.1, "p95_drawdown_bps": -10.0, "avg_time_exposed_ms": 5.0,
           "trades_count": 3, "rank": 1}
    with create_run_directory("optimization", base_dir=base_dir, git=False) as run:
        run.write_artifact("frontier", [row])
    run_dir = Path(run.path)
    path = run_dir / "results" / "frontier.parquet"
    table = pa.Table.from_pylist([{**row, "run_id": run.run_id}], schema=old_schema)
    pq.write_table(table.replace_schema_metadata(
        {"artifact_type": "frontier", "run_id": run.run_id, "rows": "1", "schema_version": "1.0.0"}),
        path)
    manifest = json.loads((run_dir / "run.json").read_text())
    data = path.read_bytes()
    manifest["artifacts"]["frontier"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest["schema_version"]["artifacts"] = "1.0.0"
    (run_dir / "run.json").write_text(json.dumps(manifest))

    upgraded = read_artifact(run_dir, "frontier")
    assert upgraded.schema.remove_metadata().equals(FRONTIER_SCHEMA)
    assert upgraded.column("overfit").null_count == 1
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).registered == 1
    assert run_sql(catalog, "SELECT policy_id, overfit FROM all_frontier").to_pylist() == [
        {"policy_id": "p", "overfit": None}]
