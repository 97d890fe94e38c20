"""Per-run index rows that run listings filter and sort on, kept beside the runs table.

- ``run_fields``: every leaf of a run's ``parameters`` and ``dataset`` as one row
  (``params.policy.sl`` -> text and, for numbers, a DOUBLE), so a filter on a parameter is
  an indexed lookup instead of JSON parsing of 100,000 manifests;
- ``run_metrics``: the run's pooled summary row (all callers), at most one per run: the
  ``validation`` split when the run has one (the out-of-sample verdict), else ``all``,
  else ``train``;
- a failed run's error (type, message, phase) as columns of the runs table.

All of it is derived from the run directories at registration: a rebuilt catalog has the
same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import duckdb
import pyarrow as pa

from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.manifest import RunManifest

FIELDS_TABLE = "run_fields"
SUMMARY_TABLE = f"artifact_{ArtifactType.SUMMARY.value}"
METRICS_TABLE = "run_metrics"
#: Summary columns that describe the row rather than measure the run.
METRICS_KEY_COLUMNS = ("run_id", "caller_name", "split", "policy_id")
#: The split a run's metrics come from, in order of preference.
METRICS_SPLITS = ("validation", "all", "train")

_FIELDS_DDL = f"""
CREATE TABLE IF NOT EXISTS {FIELDS_TABLE} (
    run_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value_text TEXT,
    value_num DOUBLE,
    PRIMARY KEY (run_id, field)
)"""

_FIELDS_ARROW = pa.schema([("run_id", pa.string()), ("field", pa.string()),
                           ("value_text", pa.string()), ("value_num", pa.float64())])


def ensure_index_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``run_fields`` and ``run_metrics`` (typed like the summary's columns)."""
    con.execute(_FIELDS_DDL)
    con.execute(f"CREATE TABLE IF NOT EXISTS {METRICS_TABLE} AS SELECT run_id, split, "
                f"policy_id, {', '.join(_quoted(metric_names()))} FROM {SUMMARY_TABLE} WHERE false")
    # A listing reads one page's rows by run_id: indexed lookups, not scans of every run.
    con.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {METRICS_TABLE}_run_id "
                f"ON {METRICS_TABLE} (run_id)")


def metric_names() -> list[str]:
    """The summary's measured columns: the names ``metrics.<name>`` accepts."""
    return [f.name for f in ArtifactType.SUMMARY.spec.schema if f.name not in METRICS_KEY_COLUMNS]


def _quoted(names: Iterable[str]) -> list[str]:
    return ['"' + n.replace('"', '""') + '"' for n in names]


def _leaves(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(f"{prefix}.{k}", v)
    elif value is not None:
        yield prefix, value


def field_rows(manifest: RunManifest) -> list[dict[str, Any]]:
    """The ``run_fields`` rows of one run: ``params.<dotted key>`` and ``dataset.<key>``.

    Numbers keep their value in ``value_num`` (booleans do not: ``true`` is text); lists
    are stored as their JSON text.
    """
    params = manifest.parameters.model_dump(exclude_none=True)
    dataset = manifest.dataset.model_dump(by_alias=True, exclude_none=True)
    rows = []
    for field, value in [*_leaves("params", params), *_leaves("dataset", dataset)]:
        if isinstance(value, bool):
            text, num = ("true" if value else "false"), None
        elif isinstance(value, int | float):
            text, num = json.dumps(value), float(value)
        elif isinstance(value, str):
            text, num = value, None
        else:
            text, num = json.dumps(value, sort_keys=True), None
        rows.append({"run_id": manifest.run_id, "field": field, "value_text": text,
                     "value_num": num})
    return rows


def insert_index_rows(con: duckdb.DuckDBPyConnection, manifests: list[RunManifest],
                      summary_table: str = SUMMARY_TABLE) -> None:
    """Index rows of freshly registered runs (their summaries already consolidated, or
    staged in ``summary_table``); the caller holds the transaction."""
    rows = [r for m in manifests for r in field_rows(m)]
    if rows:
        con.register("_qb_fields", pa.Table.from_pylist(rows, schema=_FIELDS_ARROW))
        con.execute(f"INSERT INTO {FIELDS_TABLE} SELECT * FROM _qb_fields")
        con.unregister("_qb_fields")
    # only runs with summary rows can have metrics: a batch without any skips the scan of
    # the summary table, whose size grows with the registered runs, not with the batch
    insert_metrics(con, [m.run_id for m in manifests
                         if (e := m.artifacts.get(ArtifactType.SUMMARY.value)) and e.rows],
                   summary_table)


def insert_metrics(con: duckdb.DuckDBPyConnection, run_ids: list[str],
                   summary_table: str = SUMMARY_TABLE) -> None:
    """Pick each run's pooled summary row (see the module doc) into ``run_metrics``, from
    ``summary_table`` (a sync passes its batch's own rows: the consolidated table holds
    every registered run's, and scanning it would make a sync's cost grow with them)."""
    if not run_ids:
        return
    names = ", ".join(_quoted(metric_names()))
    order = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(METRICS_SPLITS))
    con.execute(
        f"INSERT INTO {METRICS_TABLE} SELECT run_id, split, policy_id, {names} "
        f"FROM {summary_table} "
        "WHERE run_id IN (SELECT unnest(?)) AND (caller_name IS NULL OR caller_name = '*') "
        f"QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY CASE split {order} "
        "ELSE 9 END, policy_id) = 1", [run_ids])


def backfill_index(con: duckdb.DuckDBPyConnection, runs_table: str) -> None:
    """Index rows and error columns for runs registered by a catalog older than them."""
    con.execute(f"UPDATE {runs_table} SET "
                "error_type = json_extract_string(manifest_json, '$.error.type'), "
                "error_message = json_extract_string(manifest_json, '$.error.message'), "
                "error_phase = json_extract_string(manifest_json, '$.error.phase') "
                "WHERE error_type IS NULL AND status = 'failed'")
    have = {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM {FIELDS_TABLE}").fetchall()}
    todo = [RunManifest.model_validate_json(j) for rid, j in con.execute(
        f"SELECT run_id, manifest_json FROM {runs_table}").fetchall() if rid not in have]
    if todo:
        con.execute(f"DELETE FROM {METRICS_TABLE} WHERE run_id IN (SELECT unnest(?))",
                    [[m.run_id for m in todo]])
        insert_index_rows(con, todo)


__all__ = ["FIELDS_TABLE", "METRICS_SPLITS", "METRICS_TABLE", "backfill_index",
           "ensure_index_tables", "field_rows", "insert_index_rows", "insert_metrics",
           "metric_names"]
