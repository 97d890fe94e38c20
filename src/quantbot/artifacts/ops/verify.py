"""Verify run directories against their manifests.

Verification reuses the store's run validation (``validate.load_run`` for the manifest, and
the same per-artifact check the catalog applies: bytes, sha256, Parquet, rows, schema) but
reports *every* problem of a run, one per row, instead of stopping at the first.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from quantbot.artifacts.schema.artifact_types import ARTIFACT_PATHS
from quantbot.artifacts.schema.layout import (
    MANIFEST_NAME,
    SUCCESS_MARKER,
    month_partition,
    parse_iso,
    validate_run_id,
)
from quantbot.artifacts.schema.manifest import RunManifest, config_hash
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.artifacts.store.runs import (
    RunLocation,
    duplicate_reason,
    find_run_directory,
    iter_run_locations,
    run_id_copies,
)
from quantbot.artifacts.store.validate import (
    InvalidRunError,
    check_artifact,
    load_run,
    tree_problem,
)

_THREADS = 4


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a run: which run, which file, what."""

    run_id: str
    path: str
    problem: str


@dataclass
class VerifyReport:
    runs_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"runs_checked": self.runs_checked, "ok": self.ok,
                "problems": [asdict(p) for p in self.problems]}


def _marker_problems(storage: Storage, loc: RunLocation, m: RunManifest) -> list[str]:
    marker = storage.join(loc.path, SUCCESS_MARKER)
    if not storage.exists(marker):
        if m.status != "completed":
            return []
        return [("status completed but _SUCCESS is missing: the writer stopped before sealing "
                 "the run; `quantbot backtest gc --apply` marks it failed")]
    if m.status != "completed":  # e.g. gc's failed manifest landed just before the marker
        why = f" ({m.error.type}: {m.error.message.splitlines()[0][:100]})" if m.error else ""
        return [f"_SUCCESS present but manifest status is {m.status}{why}"]
    text = storage.read_bytes(marker).decode("utf-8", "replace").strip()
    try:
        stamp = parse_iso(text)
    except ValueError:
        return [f"_SUCCESS holds {text[:40]!r}, not an ISO completion timestamp"]
    if m.completed_at and stamp != parse_iso(m.completed_at):
        return [f"_SUCCESS says {text} but manifest completed_at is {m.completed_at}"]
    return []


def verify_run(storage: Storage, loc: RunLocation) -> list[Problem]:
    """Every problem of one run directory ([] when it checks out)."""
    manifest_path = storage.join(loc.path, MANIFEST_NAME)
    unsafe = tree_problem(storage, loc)  # links, FIFOs, files as folders: never read them
    if unsafe is not None:
        return [Problem(loc.run_id, *unsafe)]
    if not storage.exists(manifest_path):
        return [Problem(loc.run_id, manifest_path, "run.json is missing")]
    try:
        run = load_run(storage, loc, with_data=False, check_tree=False)
    except InvalidRunError as err:
        return [Problem(loc.run_id, manifest_path, str(err))]
    m = run.manifest
    out = [Problem(loc.run_id, storage.join(loc.path, SUCCESS_MARKER), p)
           for p in _marker_problems(storage, loc, m)]
    recorded = m.parameters.config_hash
    if recorded is not None and recorded != config_hash(m.parameters.model_dump()):
        out.append(Problem(loc.run_id, manifest_path, f"parameters.config_hash {recorded} does "
                           "not match the parameters (edited after the run?)"))
    if m.status == "failed" and m.error is None:
        out.append(Problem(loc.run_id, manifest_path, "status failed but no error recorded"))
    expected_month = month_partition(parse_iso(m.created_at))
    if expected_month != loc.month:
        out.append(Problem(loc.run_id, loc.path,
                           f"in partition {loc.month} but created_at is in {expected_month}"))
    for name, entry in m.artifacts.items():
        try:
            # the scanner's own check; parse=False still proves the schema (exact footer,
            # else a column-by-column check) without loading the table
            check_artifact(storage, run, name, parse=False)
        except InvalidRunError as err:
            out.append(Problem(loc.run_id, storage.join(loc.path, *entry.path.split("/")), str(err)))
    # Only completed runs: a running run's file lands before its manifest entry, and a run
    # that failed between the two may keep such a file legitimately.
    if m.status == "completed":
        for kind, rel in ARTIFACT_PATHS.items():
            path = storage.join(loc.path, *rel.split("/"))
            if kind.value not in m.artifacts and storage.exists(path):
                out.append(Problem(loc.run_id, path, f"{kind.value} file not listed in run.json"))
    return out


def verify_runs(base_dir: str | os.PathLike[str] = "runs", run_id: str | None = None) -> VerifyReport:
    """Check one run (``run_id``) or every run under ``base_dir``: manifest, artifacts, marker."""
    storage = open_storage(base_dir)
    if run_id is not None:
        path = find_run_directory(base_dir, run_id)
        locations = [RunLocation(validate_run_id(run_id), os.path.basename(os.path.dirname(path)),
                                 path)]
    else:
        locations = iter_run_locations(storage, include_unsafe=True)
    report = VerifyReport(runs_checked=len(locations))
    copies = run_id_copies(storage)
    with ThreadPoolExecutor(_THREADS) as pool:
        for loc, problems in zip(locations, pool.map(lambda loc: verify_run(storage, loc),
                                                     locations)):
            if loc.run_id in copies:
                problems.insert(0, Problem(loc.run_id, loc.path,
                                           duplicate_reason(loc.run_id, copies[loc.run_id])))
            report.problems.extend(problems)
    return report


__all__ = ["Problem", "VerifyReport", "verify_run", "verify_runs"]
