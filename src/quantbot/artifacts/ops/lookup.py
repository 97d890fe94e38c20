"""Finding one run from what a person types: a full UUID or an unambiguous prefix.

Like git's abbreviated commits: at least 8 hex characters (hyphens as in the UUID are
allowed), unique among the catalog's runs and the run folders under the base dir. The
catalog is asked first (one indexed query); the folders are listed only when the catalog
does not know the run, so a run that completed after the last sync is still found.
"""

from __future__ import annotations

import os

import duckdb

from quantbot.artifacts.catalog.connection import CatalogRef, catalog_exists, open_catalog
from quantbot.artifacts.catalog.schema import RUNS_TABLE
from quantbot.artifacts.schema.layout import (
    RUN_DIR_PREFIX,
    is_month_partition,
    run_id_from_dir_name,
)
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import AmbiguousRunIdError, CatalogError, InvalidRunIdError, RunNotFoundError

#: The shortest prefix accepted (8 hex characters: the id the CLI prints).
MIN_PREFIX = 8
_HEX = frozenset("0123456789abcdef")
_SHOWN = 5


def _normalise(ref: str) -> str:
    """The canonical (lower-case, hyphenated) form of a UUID or UUID prefix."""
    text = str(ref).strip().lower()
    if text.startswith(RUN_DIR_PREFIX):
        text = text[len(RUN_DIR_PREFIX):]
    digits = text.replace("-", "")
    if not (MIN_PREFIX <= len(digits) <= 32) or not all(c in _HEX for c in digits):
        raise InvalidRunIdError(
            f"invalid run id {ref!r}: expected a UUID or a prefix of at least {MIN_PREFIX} hex "
            "characters")
    cuts = [0, 8, 12, 16, 20, 32]
    return "-".join(digits[a:b] for a, b in zip(cuts, cuts[1:]) if digits[a:b])


def is_run_ref(text: str) -> bool:
    """Whether ``text`` has the shape of a run id or prefix (it may still name no run)."""
    try:
        _normalise(text)
    except InvalidRunIdError:
        return False
    return True


def _catalog_matches(catalog: CatalogRef, prefix: str) -> dict[str, str]:
    """run_id -> run_dir (as recorded) of cataloged runs starting with ``prefix``."""
    try:
        with open_catalog(catalog, read_only=True) as con:
            rows = con.execute(f"SELECT run_id, run_dir FROM {RUNS_TABLE} WHERE starts_with(run_id, ?)"
                               " ORDER BY run_id LIMIT ?", [prefix, _SHOWN + 1]).fetchall()
    except (CatalogError, duckdb.CatalogException):
        return {}  # an empty, busy or table-less catalog: the folders still answer
    return dict(rows)


def _folder_matches(storage: Storage, prefix: str) -> dict[str, str]:
    """run_id -> folder path of run folders under the storage root starting with ``prefix``."""
    out: dict[str, str] = {}
    for month in sorted(storage.list_dir(storage.root), reverse=True):
        if not is_month_partition(month):
            continue
        month_dir = storage.join(storage.root, month)
        for name in storage.list_dir(month_dir):
            run_id = run_id_from_dir_name(name)
            if run_id is not None and run_id.startswith(prefix):
                out.setdefault(run_id, storage.join(month_dir, name))
    return out


def _unique(ref: str, matches: dict[str, str]) -> tuple[str, str] | None:
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:_SHOWN])
        raise AmbiguousRunIdError(f"run id prefix {ref!r} matches {len(matches)}"
                                  f"{'+' if len(matches) > _SHOWN else ''} runs ({shown}); "
                                  "give more characters")
    return next(iter(matches.items())) if matches else None


def _storage_for(base: Storage, recorded: str) -> Storage:
    """The run folder the catalog recorded, through the base storage's own configuration
    when it lies under it (so S3 options are kept), else re-opened from its URI."""
    root_uri = (base.local_path(base.root) or base.uri(base.root)).rstrip("/")
    if recorded.startswith(root_uri + "/"):
        return base.at(base.join(base.root, *recorded[len(root_uri) + 1:].split("/")))
    return open_storage(recorded, endpoint_url=base.s3_endpoint)


def locate_run(ref: str, *, catalog: CatalogRef | None = None,
               base_dir: str | os.PathLike[str] | Storage = "runs") -> Storage:
    """The storage rooted at the folder of the run ``ref`` names (a UUID or a prefix).

    A full UUID that the catalog knows costs one query; a prefix must be unique among the
    cataloged runs and the folders together (a run not yet synced can make it ambiguous).
    Raises InvalidRunIdError for text that cannot name a run, AmbiguousRunIdError for a
    prefix matching several runs, RunNotFoundError when neither has it.
    """
    prefix = _normalise(ref)
    base = open_storage(base_dir)
    cataloged = (_catalog_matches(catalog, prefix)
                 if catalog is not None and catalog_exists(catalog) else {})
    if len(prefix) == 36 and prefix in cataloged:
        return _storage_for(base, cataloged[prefix])
    folders = {} if len(prefix) == 36 and cataloged else _folder_matches(base, prefix)
    found = _unique(ref, {**folders, **cataloged})
    if found is None:
        where = "in the catalog or " if catalog is not None else ""
        raise RunNotFoundError(f"run {ref} not found {where}under {base.uri(base.root)}")
    run_id, path = found
    return _storage_for(base, path) if run_id in cataloged else base.at(path)


def resolve_run_ids(refs: list[str], *, catalog: CatalogRef | None = None,
                    base_dir: str | os.PathLike[str] | Storage = "runs",
                    lock_timeout: float | None = None) -> list[str]:
    """The run id of each ref, as ``locate_run`` finds it; the full UUIDs the catalog knows
    cost one query together (a bulk command over thousands of runs opens it once). A
    catalog busy for ``lock_timeout`` seconds leaves the answer to the run folders."""
    wanted = [_normalise(ref) for ref in refs]
    known: set[str] = set()
    if catalog is not None and catalog_exists(catalog):
        try:
            with open_catalog(catalog, read_only=True, lock_timeout=lock_timeout) as con:
                known = {r[0] for r in con.execute(
                    f"SELECT run_id FROM {RUNS_TABLE} WHERE run_id IN (SELECT unnest(?))",
                    [[w for w in wanted if len(w) == 36]]).fetchall()}
        except CatalogError:  # busy or unreadable: the folders answer
            catalog = None
        except duckdb.CatalogException:  # no runs table yet
            pass
    return [w if w in known else run_id_of(locate_run(ref, catalog=catalog, base_dir=base_dir))
            for ref, w in zip(refs, wanted, strict=True)]


def run_uri(run: Storage) -> str:
    """How a located run folder is shown to people (a path or a URI)."""
    return run.uri(run.root)


def run_id_of(run: Storage) -> str:
    """The id of the run whose folder ``run`` is rooted at (``.../run_id=<uuid>``)."""
    run_id = run_id_from_dir_name(run.root.rstrip("/").rsplit("/", 1)[-1])
    if run_id is None:
        raise InvalidRunIdError(f"{run_uri(run)} is not a run folder (expected run_id=<uuid>)")
    return run_id


__all__ = ["MIN_PREFIX", "is_run_ref", "locate_run", "resolve_run_ids", "run_id_of", "run_uri"]
