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

import os
from dataclasses import asdict, dataclass
from typing import Any

from quantbot._compat import legacy_arguments
from quantbot.artifacts.catalog.connection import CatalogRef
from quantbot.artifacts.ops.diff import ArtifactComparison, compare_artifacts
from quantbot.artifacts.ops.lookup import locate_run
from quantbot.artifacts.store.runs import read_manifest
from quantbot.backtest.flows.optimization import FullFlow, OptimizationFlow
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
from quantbot.errors import FlowParameterError

#: Every run type a flow produces, to the flow that rebuilds it from a manifest.
FLOWS: dict[str, type[Flow]] = {f.run_type: f for f in (PathOnlyFlow, PolicyFlow,
                                                        OptimizationFlow, FullFlow)}

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


@legacy_arguments("run_id", "base_dir", "catalog")
def rerun(run_id: str, *, catalog: CatalogRef | None = None,
          base_dir: str | os.PathLike[str] = "runs", durable: bool = True,
          progress: Progress | None = None, new_run_id: str | None = None,
          around_run: RunHook | None = None) -> RerunReport:
    """Re-run ``run_id`` (a UUID or an unambiguous prefix, found through ``catalog`` or
    under ``base_dir``) into a new run in ``base_dir`` (id ``new_run_id``, default a fresh
    one) and compare the two runs' artifacts row for row."""
    original_dir = locate_run(run_id, catalog=catalog, base_dir=base_dir)
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
    comparisons = compare_artifacts(original_dir, original, result.run_dir, new)
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
