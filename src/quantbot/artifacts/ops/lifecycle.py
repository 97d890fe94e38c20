"""Run lifecycle checks: verify run directories against their manifests, and collect the
runs a crashed process left ``running`` (gc).

Verification reuses the catalog scanner's checks (``scan.load_run`` for the manifest, and
the same per-artifact check it applies: bytes, sha256, Parquet, rows, schema) but reports
*every* problem of a run, one per row, instead of stopping at the first.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from quantbot.artifacts.store.validate import InvalidRunError, check_artifact, load_run
from quantbot.artifacts.schema.artifact_types import ARTIFACT_PATHS
from quantbot.artifacts.schema.layout import (
    MANIFEST_NAME,
    SUCCESS_MARKER,
    iso_utc,
    month_partition,
    parse_iso,
    utc_now,
    validate_run_id,
)
from quantbot.artifacts.schema.manifest import RunManifest, deep_merge, parse_manifest, validate_manifest
from quantbot.artifacts.store.runs import RunLocation, find_run_directory, iter_run_locations
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import QuantbotError

_THREADS = 4
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
STALE_ERROR_TYPE = "StaleRun"


# -- verify -----------------------------------------------------------------------------
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
        return ["status completed but _SUCCESS is missing"] if m.status == "completed" else []
    if m.status != "completed":
        return [f"_SUCCESS present but manifest status is {m.status}"]
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
    if not storage.exists(manifest_path):
        return [Problem(loc.run_id, manifest_path, "run.json is missing")]
    try:
        run = load_run(storage, loc, with_data=False)
    except InvalidRunError as err:
        return [Problem(loc.run_id, manifest_path, str(err))]
    m = run.manifest
    out = [Problem(loc.run_id, storage.join(loc.path, SUCCESS_MARKER), p)
           for p in _marker_problems(storage, loc, m)]
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
        locations = iter_run_locations(storage)
    report = VerifyReport(runs_checked=len(locations))
    with ThreadPoolExecutor(_THREADS) as pool:
        for problems in pool.map(lambda loc: verify_run(storage, loc), locations):
            report.problems.extend(problems)
    return report


# -- gc ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaleRun:
    """A run without ``_SUCCESS`` that has not finished within the threshold."""

    run_id: str
    path: str
    status: str  # pending | running | no run.json
    since: str  # ISO: started_at, else created_at, else the folder's mtime
    age_hours: float
    marked_failed: bool = False


def parse_age(text: str | timedelta) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` as a timedelta."""
    if isinstance(text, timedelta):
        return text
    match = _AGE_RE.match(str(text))
    if not match:
        raise QuantbotError(f"invalid age {text!r}: expected a number and a unit s, m, h, d or w "
                            "(e.g. 24h)")
    try:
        return timedelta(seconds=float(match.group(1)) * _AGE_UNITS[match.group(2)])
    except OverflowError:
        raise QuantbotError(f"invalid age {text!r}: too large") from None


def _mtime(path: str) -> datetime:
    # The storage abstraction has no mtime; a folder without run.json only exists on the
    # disk a crashed writer used, so the local stat is what we have.
    return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)


def _stale_candidate(storage: Storage, loc: RunLocation, now: datetime,
                     threshold: timedelta) -> tuple[StaleRun, RunManifest | None] | None:
    if storage.exists(storage.join(loc.path, SUCCESS_MARKER)):
        return None
    manifest_path = storage.join(loc.path, MANIFEST_NAME)
    try:
        manifest: RunManifest | None = parse_manifest(storage.read_bytes(manifest_path), manifest_path)
    except FileNotFoundError:
        manifest = None
    except QuantbotError:
        return None  # unreadable manifests are for `verify` to report, not for gc to rewrite
    if manifest is not None:
        if manifest.status not in ("pending", "running"):
            return None
        since = parse_iso(manifest.started_at or manifest.created_at)
        status = manifest.status
    elif storage.local_path(loc.path) is None:
        return None  # an object-store "folder" has no age of its own
    else:
        since, status = _mtime(loc.path), "no run.json"
    age = now - since
    if age <= threshold:
        return None
    return StaleRun(loc.run_id, loc.path, status, iso_utc(since),
                    round(age.total_seconds() / 3600, 2)), manifest


def _infer_run_type(storage: Storage, loc: RunLocation) -> str:
    """Best guess for a folder that crashed before writing run.json (run_type is required)."""
    have = {k.value for k, rel in ARTIFACT_PATHS.items()
            if storage.exists(storage.join(loc.path, *rel.split("/")))}
    if "frontier" in have:
        return "full" if "paths" in have else "optimization"
    if "trades" in have:
        return "full" if "paths" in have else "policy"
    return "path-only" if "paths" in have else "policy"


def _mark_failed(storage: Storage, loc: RunLocation, stale: StaleRun,
                 manifest: RunManifest | None, threshold: timedelta, now: datetime) -> bool:
    manifest_path = storage.join(loc.path, MANIFEST_NAME)
    message = (f"no _SUCCESS and still {stale.status} {stale.age_hours:g} h after {stale.since} "
               f"(threshold {threshold}); the process that ran it presumably crashed. "
               "Marked failed by `quantbot backtest gc`.")
    error = {"type": STALE_ERROR_TYPE, "message": message, "traceback": None}
    if manifest is not None:
        # Re-read right before writing: the run may have finished since the listing.
        if storage.exists(storage.join(loc.path, SUCCESS_MARKER)):
            return False
        current = parse_manifest(storage.read_bytes(manifest_path), manifest_path)
        if current.status not in ("pending", "running"):
            return False
        data = deep_merge(current.to_dict(), {"status": "failed", "completed_at": iso_utc(now),
                                              "error": error})
    else:
        created = parse_iso(stale.since)
        if month_partition(created) != loc.month:  # keep the partition consistent
            created = datetime.fromisoformat(f"{loc.month}-01T00:00:00+00:00")
        data = {"run_id": loc.run_id, "run_type": _infer_run_type(storage, loc),
                "status": "failed", "created_at": iso_utc(created), "completed_at": iso_utc(now),
                "error": {**error, "message": message + " run.json was missing; run_type is "
                          "inferred from the files present."}}
    new = validate_manifest(data, manifest_path)
    storage.write_bytes(manifest_path, new.to_json().encode(), durable=True)
    storage.sync_dir(loc.path)
    return True


def collect_stale_runs(base_dir: str | os.PathLike[str] = "runs",
                       older_than: str | timedelta = "24h", *, apply: bool = False,
                       now: datetime | None = None) -> list[StaleRun]:
    """Runs left ``pending``/``running`` (no ``_SUCCESS``) for longer than ``older_than``.

    Dry run by default; with ``apply=True`` each is marked failed (error type ``StaleRun``),
    run.json replaced atomically, so ``catalog-sync`` registers it as a failed run.
    """
    threshold = parse_age(older_than)
    now = now or utc_now()
    storage = open_storage(base_dir)
    out: list[StaleRun] = []
    for loc in iter_run_locations(storage):
        found = _stale_candidate(storage, loc, now, threshold)
        if found is None:
            continue
        stale, manifest = found
        if apply:
            stale = StaleRun(**{**asdict(stale), "marked_failed": _mark_failed(
                storage, loc, stale, manifest, threshold, now)})
        out.append(stale)
    return out


__all__ = ["Problem", "StaleRun", "VerifyReport", "collect_stale_runs", "parse_age",
           "verify_run", "verify_runs"]
