"""A catalog of many runs for listing and web-app benchmarks, built in seconds.

``synthetic_catalog(tmp, n_runs)`` writes ``min(n_runs, REAL_RUNS)`` real runs through the
public API (varied run types, statuses, git branches, nested parameters, datasets, summary
rows), registers them with ``catalog_all_runs``, then replicates their catalog rows by SQL
until the catalog holds ``n_runs`` runs. What is synthetic, exactly:

* replicas (every run past the first ``REAL_RUNS``) exist only in the catalog: their
  ``run_dir`` names a folder that does not exist, and the consolidated tables hold only
  their ``summary`` rows (``all_trades`` etc. hold the real runs' rows only);
* a replica copies its template's parameters, dataset, metrics and branch; it gets its own
  run id and its own ``created_at`` / ``started_at`` / ``completed_at`` (one run every 37 s,
  going back in time), in the columns and in ``manifest_json`` alike;
* tags, names, notes and deletions are rows inserted directly into ``run_tags`` and
  ``run_labels`` (no annotation records in the base dir, so a ``catalog-sync`` that rebuilds
  the annotation tables from records would clear them).

Everything is deterministic (seeded), so two calls with the same ``n_runs`` give the same
catalog apart from the real runs' ids and timestamps.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from quantbot.artifacts import catalog_all_runs, create_run_directory
from quantbot.artifacts.schema.layout import iso_utc

REAL_RUNS = 200
RUN_TYPES = ("policy", "policy", "optimization", "path-only", "full")
BRANCHES = ("main", "exp/fees", "exp/stops", "feature/portfolio", "main")
POLICY_KINDS = ("fixed_stop", "trailing_stop", "time_exit")
TAG_KEYS = ("stage", "owner", "dataset")
TAG_VALUES = {"stage": ("keep", "review", "baseline"), "owner": ("ana", "bo", "chen"),
              "dataset": ("solana-2026q3", "eth-2026q3")}
_START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_STEP = timedelta(seconds=37)


def _parameters(i: int, rng: random.Random) -> dict[str, Any]:
    return {"policy_id": f"p{i % 20}", "strategy_id": f"s{i % 3}",
            "policy": {"kind": POLICY_KINDS[i % 3], "sl": round(rng.uniform(0.05, 0.4), 3),
                       "tp": rng.choice([1.5, 2.0, 3.0, 4.0]), "trail": i % 2 == 0},
            "fees": {"bps": rng.choice([0, 5, 10, 25]), "slippage_bps": rng.randint(0, 30)},
            "callers": ["alice", "bob"][: 1 + i % 2], "seed": i}


def _summary(i: int, rng: random.Random, splits: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for split in splits:
        for caller in (None, "alice", "bob"):
            med = rng.gauss(5, 40)
            rows.append({
                "policy_id": f"p{i % 20}", "caller_name": caller, "split": split,
                "calls_processed": 100 + i % 50, "calls_excluded": i % 7,
                "trades_count": 90 + i % 40, "avg_return_bps": med + rng.gauss(3, 5),
                "median_return_bps": med, "p25_return_bps": med - 30,
                "p75_return_bps": med + 30, "p90_return_bps": med + 60,
                "stop_out_rate": rng.uniform(0, 0.5), "avg_max_adverse_excursion_bps": -40.0,
                "avg_time_exposed_ms": 60_000.0, "median_time_exposed_ms": 50_000.0,
                "avg_tail_capture": 0.3, "median_tail_capture": 0.25,
                "win_rate": rng.uniform(0.3, 0.7), "sharpe": rng.gauss(0.5, 1.0),
                "max_drawdown": -rng.uniform(0.01, 0.4), "total_return": rng.gauss(0.02, 0.1)})
    return rows


def _write_real(base: Path, n: int, rng: random.Random) -> None:
    for i in range(n):
        run_type = RUN_TYPES[i % len(RUN_TYPES)]
        run = create_run_directory(
            run_type, base_dir=base, durable=False, git=False, parameters=_parameters(i, rng),
            dataset={"interval": ("1m", "5m")[i % 2], "calls_count": 100 + i % 50,
                     "from": "2026-07-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"})
        if run_type != "path-only":
            splits = ("train", "validation") if run_type == "optimization" else ("all",)
            run.write_artifact("summary", _summary(i, rng, splits))
        failed = i % 13 == 5
        if failed:
            run.mark_failure(ValueError(f"no candles for mint-{i}"))
        else:
            run.mark_success()
        manifest = Path(run.path, "run.json")  # git provenance without a git repository
        data = json.loads(manifest.read_text())
        data.update(git_branch=BRANCHES[(i // 5) % len(BRANCHES)], git_commit=f"{i * 7919:040x}"[-40:],
                    git_dirty=i % 4 == 0)
        if failed:
            data["error"]["phase"] = ("coverage", "execution")[i % 2]
        manifest.write_text(json.dumps(data, indent=2))


def _replicate(con: duckdb.DuckDBPyConnection, n_runs: int, rng: random.Random) -> None:
    """Copy the real runs' rows until the catalog has ``n_runs`` runs (see the module doc)."""
    templates = [r[0] for r in con.execute(
        "SELECT run_id FROM backtest_runs_catalog ORDER BY run_id").fetchall()]
    k = len(templates)
    new_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n_runs)]
    created = [_START - _STEP * i for i in range(n_runs)]
    plan = pa.table({  # noqa: F841 - scanned by DuckDB below
        "template": [templates[i % k] for i in range(k, n_runs)],
        "new_id": new_ids[k:],
        "created": [c.replace(tzinfo=None) for c in created[k:]],
        "created_text": [iso_utc(c) for c in created[k:]],
        "completed": [(c + timedelta(seconds=2)).replace(tzinfo=None) for c in created[k:]],
        "completed_text": [iso_utc(c + timedelta(seconds=2)) for c in created[k:]],
    })
    con.execute("CREATE TEMP TABLE _plan AS SELECT p.*, r.created_at AS t_created, "
                "r.completed_at AS t_completed, strftime(r.created_at, '%Y-%m') AS t_month, "
                "json_extract_string(r.manifest_json, '$.created_at') AS t_created_text, "
                "json_extract_string(r.manifest_json, '$.completed_at') AS t_completed_text, "
                "json_extract_string(r.manifest_json, '$.started_at') AS t_started_text "
                "FROM plan p JOIN backtest_runs_catalog r ON r.run_id = p.template")
    con.execute("""
        INSERT INTO backtest_runs_catalog BY NAME
        SELECT r.* REPLACE (
            p.new_id AS run_id, p.created AS created_at, p.created AS started_at,
            p.completed AS completed_at,
            replace(replace(r.run_dir, p.template, p.new_id), p.t_month,
                    strftime(p.created, '%Y-%m')) AS run_dir,
            replace(replace(r.manifest_path, p.template, p.new_id), p.t_month,
                    strftime(p.created, '%Y-%m')) AS manifest_path,
            replace(replace(replace(replace(r.manifest_json, p.template, p.new_id),
                    '"created_at": "' || p.t_created_text || '"',
                    '"created_at": "' || p.created_text || '"'),
                    '"started_at": "' || p.t_started_text || '"',
                    '"started_at": "' || p.created_text || '"'),
                    '"completed_at": "' || p.t_completed_text || '"',
                    '"completed_at": "' || p.completed_text || '"') AS manifest_json)
        FROM _plan p JOIN backtest_runs_catalog r ON r.run_id = p.template""")
    con.execute("INSERT INTO backtest_artifacts_catalog BY NAME SELECT a.* REPLACE "
                "(p.new_id AS run_id, p.created AS created_at) FROM _plan p "
                "JOIN backtest_artifacts_catalog a ON a.run_id = p.template")
    for table in ("run_fields", "run_metrics", "artifact_summary"):
        con.execute(f"INSERT INTO {table} BY NAME SELECT t.* REPLACE (p.new_id AS run_id) "
                    f"FROM _plan p JOIN {table} t ON t.run_id = p.template")
    con.execute("DROP TABLE _plan")


def _annotate(con: duckdb.DuckDBPyConnection, rng: random.Random) -> None:
    """Tags on ~40% of the runs, names on ~10%, notes on ~5%, deletions on ~3%."""
    ids = [r[0] for r in con.execute(
        "SELECT run_id FROM backtest_runs_catalog ORDER BY run_id").fetchall()]
    tags: dict[str, list[str]] = {"run_id": [], "key": [], "value": []}
    labels: dict[str, list[Any]] = {"run_id": [], "name": [], "deleted_at": [],
                                    "notes_count": [], "last_note": []}
    for n, run_id in enumerate(ids):
        if rng.random() < 0.4:
            for key in rng.sample(TAG_KEYS, rng.randint(1, len(TAG_KEYS))):
                tags["run_id"].append(run_id)
                tags["key"].append(key)
                tags["value"].append(rng.choice(TAG_VALUES[key]))
        name = f"run {n}: {rng.choice(('fees sweep', 'tight stop', 'baseline'))}" \
            if rng.random() < 0.1 else None
        notes = rng.randint(1, 3) if rng.random() < 0.05 else 0
        deleted = (_START - timedelta(days=rng.randint(1, 60))).replace(tzinfo=None) \
            if rng.random() < 0.03 else None
        if name or notes or deleted:
            labels["run_id"].append(run_id)
            labels["name"].append(name)
            labels["deleted_at"].append(deleted)
            labels["notes_count"].append(notes)
            labels["last_note"].append(f"note {notes} on run {n}" if notes else None)
    tag_rows = pa.table(tags)  # noqa: F841 - scanned by DuckDB
    label_rows = pa.table(labels)  # noqa: F841
    con.execute("INSERT INTO run_tags BY NAME SELECT * FROM tag_rows")
    con.execute("INSERT INTO run_labels BY NAME SELECT * FROM label_rows")


def synthetic_catalog(tmp: Path, n_runs: int) -> tuple[Path, Path]:
    """Build ``tmp/catalog.duckdb`` with ``n_runs`` runs (see the module doc for what is
    synthetic); returns (catalog path, base dir). ``tmp`` must not hold a catalog yet."""
    tmp = Path(tmp)
    base, db = tmp / "runs", tmp / "catalog.duckdb"
    rng = random.Random(12)
    real = min(n_runs, REAL_RUNS)
    _write_real(base, real, rng)
    report = catalog_all_runs(catalog=db, base_dir=base)
    assert report.registered == real and not report.invalid, report
    con = duckdb.connect(str(db))
    try:
        con.execute("BEGIN TRANSACTION")
        if n_runs > real:
            _replicate(con, n_runs, rng)
        _annotate(con, rng)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return db, base


__all__ = ["REAL_RUNS", "synthetic_catalog"]
