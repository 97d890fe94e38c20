"""Archiving old month partitions to one compressed tarball per month, and restoring them.

Order of operations in ``archive_months`` (nothing is deleted before its copy is proven):

1. every month is checked first (no run still in progress, nothing but run folders, no
   archive of that name yet), so a refusal changes nothing;
2. the month is packed into ``runs-YYYY-MM.tar.gz`` written atomically (temporary name,
   fsync, rename, folder fsync) with each file's sha256 recorded while packing;
3. the archive is read back and every member's sha256 compared with the source file;
4. the month folder is renamed away (scanners stop seeing it at once), its runs are removed
   from the catalog in one transaction (on failure the folder is renamed back and the
   archive removed), and only then the folder is deleted.

Python 3.11's stdlib has no zstd, so archives are tar + gzip (Parquet pages are already
zstd-compressed; a stronger outer codec would buy little).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tarfile
from dataclasses import dataclass, field
from typing import IO

from quantbot.artifacts.catalog.connection import CatalogRef, catalog_exists
from quantbot.artifacts.catalog.remove import unregister_runs
from quantbot.artifacts.catalog.sync import SyncReport, catalog_all_runs
from quantbot.artifacts.schema.layout import (
    is_month_partition,
    month_partition,
    run_dir_name,
    run_id_from_dir_name,
    utc_now,
)
from quantbot.artifacts.store.backends import TMP_PREFIX, Storage, open_storage
from quantbot.artifacts.store.runs import RunLocation
from quantbot.artifacts.store.validate import classify
from quantbot.errors import QuantbotError, RunExistsError

ARCHIVE_SUFFIX = ".tar.gz"
_CHUNK = 1 << 20


class ArchiveError(QuantbotError):
    """An archive that cannot be written, verified or restored safely."""


@dataclass
class MonthArchive:
    """One month packed: where the archive is, which runs it holds, and what was removed."""

    month: str
    path: str
    run_ids: list[str]
    files: int
    bytes: int
    sha256: str
    unregistered: int = 0


@dataclass
class RestoreResult:
    archive: str
    months: list[str]
    run_ids: list[str]
    sync: SyncReport | None = None
    run_dirs: list[str] = field(default_factory=list)


def archive_name(month: str) -> str:
    return f"runs-{month}{ARCHIVE_SUFFIX}"


def default_archive_dir(base_dir: str | os.PathLike[str]) -> str:
    """``<base-dir>/../archive`` (``archive`` next to ``runs``)."""
    return os.path.normpath(os.path.join(os.fspath(base_dir), os.pardir, "archive"))


def _sha256_of(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class _HashingReader:
    """Feeds a file to tarfile while hashing what it reads (one pass over the source)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.digest.update(data)
        return data


def _local(storage: Storage) -> Storage:
    """Archives move whole folders (rename, rmtree): local disk only, for now."""
    if storage.local_path(storage.root) is None:
        raise ArchiveError(f"{storage.root}: archive and restore work on local folders only")
    return storage


# -- archive ----------------------------------------------------------------------------
def _month_contents(storage: Storage, month: str) -> list[RunLocation]:
    """The month's run folders; anything else in it (or a run in progress) is a refusal."""
    month_dir = storage.join(storage.root, month)
    runs, strays = [], []
    for name in sorted(storage.list_dir(month_dir)):
        run_id = run_id_from_dir_name(name)
        path = storage.join(month_dir, name)
        if run_id is None or os.path.islink(path) or not os.path.isdir(path):
            strays.append(name)
        else:
            runs.append(RunLocation(run_id, month, path))
    if strays:
        raise ArchiveError(f"{month_dir} holds entries that are not run folders "
                           f"({', '.join(strays[:3])}); move them away before archiving")
    busy = [loc.run_id for loc in runs if classify(storage, loc) == "incomplete"]
    if busy:
        raise ArchiveError(
            f"month {month} has {len(busy)} run(s) without _SUCCESS that are not failed "
            f"(e.g. {busy[0]}); wait for them, or mark crashed ones failed with "
            "`quantbot backtest gc --apply`")
    return runs


def _walk_files(month_dir: str) -> tuple[list[str], list[str]]:
    """Folders and regular files below ``month_dir`` (relative, sorted); links are refused."""
    dirs, files = [], []
    for dirpath, dirnames, filenames in os.walk(month_dir):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, month_dir)
            if os.path.islink(path):
                raise ArchiveError(f"{path} is a symbolic link; run folders hold regular files only")
            if name in dirnames:
                dirs.append(rel)
            elif os.path.isfile(path):
                files.append(rel)
            else:
                raise ArchiveError(f"{path} is not a regular file")
    return dirs, files


def _pack(storage: Storage, month: str, out: Storage, out_path: str) -> tuple[dict[str, str], int, str]:
    """Write the archive atomically; returns {member name: sha256}, bytes and archive sha256."""
    month_dir = storage.join(storage.root, month)
    dirs, files = _walk_files(month_dir)
    hashes: dict[str, str] = {}
    with out.open_atomic(out_path, durable=True) as sink, tarfile.open(  # type: ignore[call-overload]
            fileobj=sink, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        tar.add(month_dir, arcname=month, recursive=False)
        for rel in dirs:
            tar.add(os.path.join(month_dir, rel), arcname=f"{month}/{rel}", recursive=False)
        for rel in files:
            path = os.path.join(month_dir, rel)
            name = f"{month}/{rel.replace(os.sep, '/')}"
            info = tar.gettarinfo(path, arcname=name)
            with open(path, "rb") as src:
                reader = _HashingReader(src)
                tar.addfile(info, reader)  # type: ignore[arg-type]
            hashes[name] = reader.digest.hexdigest()
    out.sync_dir(os.path.dirname(out_path) or ".")
    assert sink.result is not None
    return hashes, sink.result.bytes, sink.result.sha256


def _verify_archive(path: str, expected: dict[str, str]) -> None:
    """Read the archive back: every file present, byte-identical (sha256) to its source."""
    seen: dict[str, str] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if member.isfile():
                    stream = tar.extractfile(member)
                    assert stream is not None
                    seen[member.name] = _sha256_of(stream)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ArchiveError(f"{path}: archive unreadable after writing ({err}); nothing deleted") from None
    if seen != expected:
        diff = sorted(set(seen) ^ set(expected)) or sorted(k for k in seen if seen[k] != expected[k])
        raise ArchiveError(f"{path}: archive does not match the source ({diff[0]}); nothing deleted")


def archive_months(base_dir: str | os.PathLike[str], before: str,
                   out_dir: str | os.PathLike[str] | None = None, db: CatalogRef | None = None,
                   lock_timeout: float | None = None) -> list[MonthArchive]:
    """Archive every month partition older than ``before`` (``YYYY-MM``) and remove it.

    Each month becomes ``<out_dir>/runs-YYYY-MM.tar.gz`` (default ``<base_dir>/../archive``),
    verified by reading it back before its folder is deleted; its runs leave the catalog
    ``db`` (when given and present). Only finished months can be archived.
    """
    if not is_month_partition(before):
        raise ArchiveError(f"invalid month {before!r}: expected YYYY-MM")
    current = month_partition(utc_now())
    if before > current:
        raise ArchiveError(f"--before {before} is after the current month {current}: "
                           "runs may still be written there; only finished months are archived")
    storage = _local(open_storage(base_dir))
    out = _local(open_storage(out_dir if out_dir is not None else default_archive_dir(base_dir)))
    months = sorted(m for m in storage.list_dir(storage.root) if is_month_partition(m) and m < before)
    plan: list[tuple[str, list[RunLocation], str]] = []
    for month in months:  # check everything before changing anything
        runs = _month_contents(storage, month)
        target = out.join(out.root, archive_name(month))
        if out.exists(target):
            raise ArchiveError(f"archive {target} already exists; refusing to overwrite it")
        plan.append((month, runs, target))
    out.make_dirs(out.root)
    done = []
    for month, runs, target in plan:
        hashes, size, digest = _pack(storage, month, out, target)
        try:
            _verify_archive(target, hashes)
        except ArchiveError:
            os.unlink(target)  # a bad copy must not block the retry
            raise
        run_ids = [loc.run_id for loc in runs]
        unregistered = _remove_month(storage, month, target, run_ids, db, lock_timeout)
        done.append(MonthArchive(month, target, run_ids, len(hashes), size, digest, unregistered))
    return done


def _remove_month(storage: Storage, month: str, archive: str, run_ids: list[str],
                  db: CatalogRef | None, lock_timeout: float | None) -> int:
    month_dir = storage.join(storage.root, month)
    doomed = storage.join(storage.root, f"{TMP_PREFIX}archived-{month}-{secrets.token_hex(4)}")
    os.rename(month_dir, doomed)  # atomic: scanners and the watcher stop seeing it at once
    try:
        removed = unregister_runs(db, run_ids, lock_timeout) if db is not None and catalog_exists(db) else 0
    except BaseException:
        os.rename(doomed, month_dir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(archive)
        raise
    storage.sync_dir(storage.root)
    shutil.rmtree(doomed)
    return removed


# -- restore ----------------------------------------------------------------------------
def _plan_members(tar: tarfile.TarFile, path: str) -> tuple[list[tarfile.TarInfo], dict[tuple[str, str], str]]:
    """Validated members and the run folders they make: {(month, dir name): run_id}."""
    members, runs = [], {}
    for m in tar.getmembers():
        parts = m.name.rstrip("/").split("/")
        bad = (m.name.startswith("/") or any(p in ("", ".", "..") for p in parts)
               or not is_month_partition(parts[0]) or not (m.isfile() or m.isdir()))
        if not bad and len(parts) >= 2:
            run_id = run_id_from_dir_name(parts[1])
            bad = run_id is None or (len(parts) == 2 and not m.isdir())
            if not bad:
                runs[(parts[0], parts[1])] = run_id
        elif not bad and not m.isdir():
            bad = True
        if bad:
            raise ArchiveError(f"{path}: unexpected member {m.name!r}; not a quantbot run archive")
        members.append(m)
    if not runs:
        raise ArchiveError(f"{path}: holds no run folders")
    ids = list(runs.values())
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:  # one run in two months would make one copy invisible to the catalog
        raise ArchiveError(f"{path}: run {twice[0]} appears in more than one month")
    return members, runs


def _existing_runs(storage: Storage, run_ids: set[str]) -> list[str]:
    found = []
    for month in storage.list_dir(storage.root):
        if is_month_partition(month):
            for name in storage.list_dir(storage.join(storage.root, month)):
                if run_id_from_dir_name(name) in run_ids:
                    found.append(storage.join(storage.root, month, name))
    return sorted(found)


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], staging: str) -> None:
    for m in members:
        target = os.path.join(staging, *m.name.rstrip("/").split("/"))
        if m.isdir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        src = tar.extractfile(m)
        assert src is not None
        with open(target, "xb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(target, m.mode & 0o777 or 0o644)
        os.utime(target, (m.mtime, m.mtime))


def restore_archive(archive: str | os.PathLike[str], base_dir: str | os.PathLike[str] = "runs",
                    db: CatalogRef | None = None, lock_timeout: float | None = None) -> RestoreResult:
    """Bring an archived month back under ``base_dir`` and sync the catalog ``db``.

    Refuses (changing nothing) when any of its runs already exists under ``base_dir``.
    Each run folder is extracted to a staging folder, then renamed into place whole.
    """
    path = os.fspath(archive)
    if not os.path.isfile(path):
        raise ArchiveError(f"archive {path} not found")
    storage = _local(open_storage(base_dir))
    storage.make_dirs(storage.root)
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the `with tar` below
    except (tarfile.TarError, OSError) as err:
        raise ArchiveError(f"{path}: not a readable tar archive ({err})") from None
    with tar:
        members, runs = _plan_members(tar, path)
        clash = _existing_runs(storage, set(runs.values()))
        if clash:
            raise RunExistsError(f"refusing to restore {path}: {len(clash)} of its runs already "
                                 f"exist (e.g. {clash[0]}); runs are never overwritten")
        staging = storage.join(storage.root, f"{TMP_PREFIX}restore-{secrets.token_hex(4)}")
        storage.create_dir_exclusive(staging)
        try:
            try:
                _extract(tar, members, staging)
            except (tarfile.TarError, OSError, EOFError) as err:
                raise ArchiveError(f"{path}: extraction failed ({err}); nothing restored") from None
            run_dirs = []
            for month, name in sorted(runs):
                final = storage.join(storage.root, month, run_dir_name(runs[(month, name)]))
                storage.make_dirs(storage.join(storage.root, month))
                if storage.exists(final):  # appeared since the check: still never overwrite
                    raise RunExistsError(f"run directory {final} already exists; not overwritten")
                os.rename(os.path.join(staging, month, name), final)
                run_dirs.append(final)
            for month in sorted({m for m, _ in runs}):
                storage.sync_dir(storage.join(storage.root, month))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    result = RestoreResult(path, sorted({m for m, _ in runs}), sorted(runs.values()),
                           run_dirs=run_dirs)
    if db is not None:
        result.sync = catalog_all_runs(db, base_dir, lock_timeout=lock_timeout)
    return result


__all__ = ["ArchiveError", "MonthArchive", "RestoreResult", "archive_months", "archive_name",
           "default_archive_dir", "restore_archive"]
