"""Run a recorded backtest again and check that it reproduces.

The original's manifest holds every parameter and each input's path and fingerprint, so
:func:`rerun` calls the same flow (any run type: path-only, policy, optimization, full; see
:func:`run_from_manifest`) into a new run and compares every artifact row by row:
rows are sorted, ``run_id`` and wall-clock columns (``errors.timestamp``) are left out,
NaN equals NaN. Different input fingerprints (the files changed since; for optimization
and full runs also the grid file) are reported as a warning: then differences are expected.
A run made from in-memory frames cannot be rerun (there is no file to read them from): that
is a one-line :class:`~quantbot.errors.DataError` saying so.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from quantbot.backtest.flows.optimization import FullFlow, OptimizationFlow
from quantbot.backtest.flows.params import FlowParameterError
from quantbot.backtest.flows.path_only import PathOnlyFlow
from quantbot.backtest.flows.policy import PolicyFlow
from quantbot.backtest.flows.skeleton import (
    Flow,
    FlowResult,
    Progress,
    RunHook,
    manifest_options,
    run_flow,
)

#: Every run type a flow produces, to the flow that rebuilds it from a manifest.
FLOWS: dict[str, type[Flow]] = {f.run_type: f for f in (PathOnlyFlow, PolicyFlow,
                                                        OptimizationFlow, FullFlow)}

#: Columns left out of the comparison per artifact type (besides run_id): wall-clock times.
VOLATILE_COLUMNS: dict[str, tuple[str, ...]] = {"errors": ("timestamp",)}


@dataclass(frozen=True)
class ArtifactComparison:
    artifact: str
    identical: bool
    rows_original: int | None  # None: the run has no such artifact
    rows_rerun: int | None
    differing_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RerunReport:
    original_run_id: str
    rerun: FlowResult
    artifacts: list[ArtifactComparison]
    fingerprints_match: dict[str, bool]  # input name -> same fingerprint
    warnings: list[str]

    @property
    def identical(self) -> bool:
        return all(a.identical for a in self.artifacts)

    @property
    def differing(self) -> list[str]:
        return [a.artifact for a in self.artifacts if not a.identical]

    def to_dict(self) -> dict[str, Any]:
        return {"original_run_id": self.original_run_id, "run_id": self.rerun.run_id,
                "run_dir": self.rerun.run_dir, "status": self.rerun.status,
                "identical": self.identical, "differing": self.differing,
                "fingerprints_match": self.fingerprints_match, "warnings": self.warnings,
                "artifacts": [asdict(a) for a in self.artifacts],
                "counts": {"calls": self.rerun.calls, "eligible": self.rerun.eligible,
                           "excluded": self.rerun.excluded, "trades": self.rerun.trades}}


def run_from_manifest(run_type: str, parameters: dict[str, Any], *,
                      base_dir: str | os.PathLike[str] = "runs", durable: bool = True,
                      progress: Progress | None = None, run_id: str | None = None,
                      around_run: RunHook | None = None) -> FlowResult:
    """Run the flow ``run_type`` again with the parameters a manifest recorded."""
    if run_type not in FLOWS:
        raise FlowParameterError(f"cannot rerun run type {run_type!r}: expected one of "
                                 f"{', '.join(FLOWS)}")
    flow = FLOWS[run_type].from_parameters(parameters)
    alerts, candles, options = manifest_options(parameters, flow)
    return run_flow(flow, alerts, candles, {**options, "base_dir": base_dir, "durable": durable, "progress": progress,
                     "run_id": run_id, "around_run": around_run})


def find_run(run_id: str, base_dir: str | os.PathLike[str], db: str | os.PathLike[str] | None
             ) -> str:
    """The folder of ``run_id``: through the catalog when it knows it, else under base_dir."""
    from quantbot.artifacts import find_run_directory
    from quantbot.artifacts.ops.describe import describe_run

    if db is None:
        return find_run_directory(base_dir, run_id)
    return describe_run(run_id, db, base_dir)["run_dir"]


def rerun(run_id: str, base_dir: str | os.PathLike[str] = "runs",
          db: str | os.PathLike[str] | None = None, *, durable: bool = True,
          progress: Progress | None = None, new_run_id: str | None = None,
          around_run: RunHook | None = None) -> RerunReport:
    """Re-run ``run_id`` (found via catalog ``db`` or under ``base_dir``) into a new run in
    ``base_dir`` (id ``new_run_id``, default a fresh one) and compare the two runs'
    artifacts."""
    from quantbot.artifacts import read_manifest

    original_dir = find_run(run_id, base_dir, db)
    original = read_manifest(original_dir)
    parameters = original.parameters.model_dump()
    result = run_from_manifest(original.run_type, parameters, base_dir=base_dir,
                               durable=durable, progress=progress, run_id=new_run_id,
                               around_run=around_run)
    new = read_manifest(result.run_dir)
    fingerprints = _fingerprints_match(parameters, new.parameters.model_dump())
    warnings = [f"{'' if name == 'grid' else 'input '}fingerprint of {name} differs from the "
                "original run's: the data changed since, so differences are expected"
                for name, same in fingerprints.items() if not same]
    if original.status != "completed":
        warnings.append(f"the original run is {original.status}, not completed")
    names = sorted(set(original.artifacts) | set(new.artifacts))
    comparisons = [compare_artifact(name, original_dir, original.artifacts.get(name),
                                    result.run_dir, new.artifacts.get(name)) for name in names]
    return RerunReport(original.run_id, result, comparisons, fingerprints, warnings)


def _fingerprints_match(old: dict[str, Any], new: dict[str, Any]) -> dict[str, bool]:
    """Per input (and the grid of an optimization): the same fingerprint in both runs."""
    out = {}
    for name in ("alerts", "candles"):
        before = (old.get("inputs") or {}).get(name, {}).get("fingerprint")
        after = (new.get("inputs") or {}).get(name, {}).get("fingerprint")
        out[name] = before is not None and before == after
    if isinstance(old.get("grid"), dict):
        before = old["grid"].get("sha256")
        out["grid"] = before is not None and before == (new.get("grid") or {}).get("sha256")
    return out


def compare_artifact(name: str, dir_a: str, entry_a: Any, dir_b: str, entry_b: Any
                     ) -> ArtifactComparison:
    """Rows of one artifact in two runs, compared as sorted multisets (see module doc)."""
    if entry_a is None or entry_b is None:
        return ArtifactComparison(name, False, entry_a.rows if entry_a else None,
                                  entry_b.rows if entry_b else None)
    a = _comparable(name, os.path.join(dir_a, *entry_a.path.split("/")))
    b = _comparable(name, os.path.join(dir_b, *entry_b.path.split("/")))
    if a.schema != b.schema:
        cols = sorted(set(a.column_names) ^ set(b.column_names)) or ["(column types)"]
        return ArtifactComparison(name, False, a.num_rows, b.num_rows, cols)
    if a.num_rows != b.num_rows:
        return ArtifactComparison(name, False, a.num_rows, b.num_rows)
    differing = [] if a.equals(b) else [c for c in a.column_names
                                        if _values(a.column(c)) != _values(b.column(c))]
    return ArtifactComparison(name, not differing, a.num_rows, b.num_rows, differing)


def _comparable(name: str, path: str) -> pa.Table:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    drop = [c for c in ("run_id", *VOLATILE_COLUMNS.get(name, ())) if c in table.column_names]
    table = table.drop_columns(drop).replace_schema_metadata(None)
    if table.num_rows and table.num_columns:
        sortable = [c for c in table.column_names
                    if not pa.types.is_nested(table.schema.field(c).type)]
        order = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in sortable])
        table = table.take(order)
    return table.combine_chunks()


def _values(column: pa.ChunkedArray) -> list[Any]:
    """Python values with NaN made comparable (NaN != NaN otherwise)."""
    return ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]
