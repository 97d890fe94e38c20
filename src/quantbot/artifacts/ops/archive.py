"""Archiving old month partitions to one compressed tarball per month, and restoring them.

``archive_months`` is all-or-nothing per month, and a SIGKILL at any point loses nothing:

1. every month is checked first (not a link, no link or special file inside, no run still
   in progress, nothing but run folders, no archive of that name yet, folders writable,
   enough free space for the tarballs), so a refusal changes nothing;
2. the month is packed into ``.tmp-archiving-<hex>-runs-YYYY-MM.tar.gz`` next to the final
   name (fsync), each file's sha256 recorded while packing, then read back and compared;
3. the month folder is renamed to ``.tmp-archived-YYYY-MM-<hex>`` (scanners stop seeing it
   at once) and its runs leave the catalog in one transaction;
4. only then the tarball gets its final name (atomic rename), and the folder is deleted.

Any failure undoes what was done (folder renamed back, temporary tarball removed) and is
reported with its cause. After a kill, ``cleanup_archive_leftovers`` (run by the next
``archive``, and by ``gc``) decides by step 4's rename: a month whose final tarball exists
was archived, so its leftover folder is deleted; otherwise the folder is put back (its runs
are found by the next sync) and the temporary tarball removed. An ``flock`` on the base
folder keeps a cleanup from touching the leftovers of an archive still running.

Python 3.11's stdlib has no zstd, so archives are tar + gzip (Parquet pages are already
zstd-compressed; a stronger outer codec would buy little).

About 430 lines: the checks, the four steps, their undo and the cleanup of what a kill
left are one protocol and are read together; packing and read-back are in ``tarball``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from quantbot._compat import legacy_arguments
from quantbot.artifacts.catalog.connection import CatalogRef, catalog_exists
from quantbot.artifacts.catalog.remove import unregister_runs
from quantbot.artifacts.catalog.sync import SyncReport, catalog_all_runs
from quantbot.artifacts.ops.tarball import (
    CHUNK,
    pack,
    sha256_of,
    verify_archive,
    walk_files,
)
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
from quantbot.errors import ArchiveError, QuantbotError, RunExistsError

ARCHIVE_SUFFIX = ".tar.gz"


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


def default_archive_dir(base_dir: str | os.PathLike[str] | Storage) -> str:
    """``<base-dir>/../archive`` (``archive`` next to ``runs``)."""
    root = base_dir.root if isinstance(base_dir, Storage) else os.fspath(base_dir)
    return os.path.normpath(os.path.join(root, os.pardir, "archive"))


def _local(storage: Storage) -> Storage:
    """Archives move whole folders (rename, rmtree): local disk only, for now."""
    if storage.local_path(storage.root) is None:
        raise ArchiveError(f"{storage.root}: archive and restore work on local folders only")
    return storage


# -- archive ----------------------------------------------------------------------------
_LEFTOVER = f"{TMP_PREFIX}archived-"  # a month folder renamed away, not yet deleted
_PARTIAL = f"{TMP_PREFIX}archiving-"  # a tarball being written or not yet committed


@dataclass
class _MonthPlan:
    """One month, checked: its runs, its files (relative to the month) and the tarball."""

    month: str
    runs: list[RunLocation]
    dirs: list[str]
    files: list[str]
    target: str
    max_bytes: int  # an upper bound on the tarball's size (gzip never grows data by >1%)


@contextlib.contextmanager
def _archive_lock(storage: Storage, wait: bool) -> Iterator[bool]:
    """An exclusive flock on the base folder (released by the kernel if the process dies);
    yields False when ``wait`` is off and another archive holds it."""
    fd = os.open(storage.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _month_contents(storage: Storage, month: str) -> list[RunLocation]:
    """The month's run folders; anything else in it (or a run in progress) is a refusal."""
    month_dir = storage.join(storage.root, month)
    if os.path.islink(month_dir):
        raise ArchiveError(f"{month_dir} is a symbolic link; archive packs and deletes real "
                           "folders only (replace the link by the folder it points to)")
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


def _existing_ancestor(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def _plan(storage: Storage, out: Storage, months: list[str]) -> list[_MonthPlan]:
    """Check every month, the folders and the free space before anything changes."""
    plan = []
    for month in months:
        runs = _month_contents(storage, month)
        dirs, files, size = walk_files(storage.join(storage.root, month))
        target = out.join(out.root, archive_name(month))
        if out.exists(target):
            raise ArchiveError(f"archive {target} already exists; refusing to overwrite it")
        plan.append(_MonthPlan(month, runs, dirs, files, target, size + size // 100 + (64 << 10)))
    out_existing = _existing_ancestor(out.root)  # --out is created only once all checks pass
    for folder in (storage.root, out_existing):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ArchiveError(f"{folder} is not writable; nothing archived")
    needed, free = sum(p.max_bytes for p in plan), shutil.disk_usage(out_existing).free
    if needed > free:
        raise ArchiveError(f"{out.root} has {free:,} bytes free; the archives may need up to "
                           f"{needed:,}; nothing archived")
    return plan


def _archive_month(storage: Storage, out: Storage, p: _MonthPlan, db: CatalogRef | None,
                   lock_timeout: float | None) -> MonthArchive:
    """Steps 2-4 of the module docstring for one month; undone on any failure."""
    month_dir = storage.join(storage.root, p.month)
    partial = out.join(out.root, f"{_PARTIAL}{secrets.token_hex(4)}-{archive_name(p.month)}")
    doomed = storage.join(storage.root, f"{_LEFTOVER}{p.month}-{secrets.token_hex(4)}")
    run_ids = [loc.run_id for loc in p.runs]
    try:
        hashes = pack(month_dir, p.month, p.dirs, p.files, partial)
        verify_archive(partial, hashes)
        with open(partial, "rb") as f:
            size, digest = os.fstat(f.fileno()).st_size, sha256_of(f)
        os.rename(month_dir, doomed)  # atomic: scanners and the watcher stop seeing it at once
        try:
            removed = (unregister_runs(db, run_ids, lock_timeout)
                       if db is not None and catalog_exists(db) else 0)
        except BaseException:
            os.rename(doomed, month_dir)
            raise
        os.rename(partial, p.target)  # the commit point: the month is archived
        out.sync_dir(out.root)
    except OSError as err:
        _discard(partial)
        raise ArchiveError(f"month {p.month} not archived ({err}); nothing changed") from None
    except BaseException:
        _discard(partial)
        raise
    storage.sync_dir(storage.root)
    try:
        shutil.rmtree(doomed)
    except OSError as err:
        raise ArchiveError(f"month {p.month} archived to {p.target}, but deleting {doomed} failed "
                           f"({err}); the next archive or gc deletes it") from None
    return MonthArchive(p.month, p.target, run_ids, len(hashes), size, digest, removed)


def _discard(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _put_back(storage: Storage, leftover: str, month: str) -> None:
    """Return a leftover month folder's runs to ``<base>/<month>``."""
    month_dir = storage.join(storage.root, month)
    if not os.path.lexists(month_dir):
        os.rename(leftover, month_dir)
        return
    for name in sorted(os.listdir(leftover)):  # the month was recreated meanwhile
        if os.path.lexists(os.path.join(month_dir, name)):
            raise ArchiveError(f"{leftover}/{name} also exists in {month_dir}; "
                               "resolve by hand (nothing was deleted)")
        os.rename(os.path.join(leftover, name), os.path.join(month_dir, name))
    os.rmdir(leftover)


def _cleanup(storage: Storage, out: Storage, apply: bool) -> list[str]:
    actions = []
    for name in sorted(storage.list_dir(storage.root)):
        month = name[len(_LEFTOVER):len(_LEFTOVER) + 7]
        if not (name.startswith(_LEFTOVER) and is_month_partition(month)):
            continue
        leftover = storage.join(storage.root, name)
        target = out.join(out.root, archive_name(month))
        if out.exists(target):
            actions.append(f"delete {leftover} (month {month} is archived in {target})")
            if apply:
                shutil.rmtree(leftover)
        else:
            actions.append(f"put {leftover} back to {storage.join(storage.root, month)} "
                           "(its archive was never completed)")
            if apply:
                _put_back(storage, leftover, month)
    if out.exists(out.root):
        for name in sorted(out.list_dir(out.root)):
            if name.startswith(_PARTIAL):
                actions.append(f"delete {out.join(out.root, name)} (unfinished archive)")
                if apply:
                    _discard(out.join(out.root, name))
    if apply and actions:
        storage.sync_dir(storage.root)
    return actions


def cleanup_archive_leftovers(base_dir: str | os.PathLike[str] = "runs",
                              out_dir: str | os.PathLike[str] | None = None,
                              apply: bool = True) -> list[str]:
    """Finish what a killed ``archive`` left: one line per action (done, or only planned when
    ``apply`` is off). Does nothing while another archive of ``base_dir`` is running.

    A ``.tmp-archived-YYYY-MM-*`` folder is deleted when ``runs-YYYY-MM.tar.gz`` exists in
    ``out_dir`` (default ``<base_dir>/../archive``), else put back; ``.tmp-archiving-*``
    tarballs are deleted.
    """
    storage = _local(open_storage(base_dir))
    out = _local(open_storage(out_dir if out_dir is not None else default_archive_dir(base_dir)))
    if not storage.exists(storage.root):
        return []
    with _archive_lock(storage, wait=False) as held:
        return _cleanup(storage, out, apply) if held else []


@legacy_arguments("base_dir", "before", "out_dir", "catalog", "lock_timeout")
def archive_months(before: str, *, base_dir: str | os.PathLike[str] | Storage = "runs",
                   out_dir: str | os.PathLike[str] | None = None,
                   catalog: CatalogRef | None = None,
                   lock_timeout: float | None = None) -> list[MonthArchive]:
    """Archive every month partition older than ``before`` (``YYYY-MM``) and remove it.

    Each month becomes ``<out_dir>/runs-YYYY-MM.tar.gz`` (default ``<base_dir>/../archive``),
    verified by reading it back before its folder is deleted; its runs leave the catalog
    ``catalog`` (when given and present). Only finished months can be archived. Leftovers of a
    killed archive are cleaned up first.
    """
    if not is_month_partition(before):
        raise ArchiveError(f"invalid month {before!r}: expected YYYY-MM")
    current = month_partition(utc_now())
    if before > current:
        raise ArchiveError(f"--before {before} is after the current month {current}: "
                           "runs may still be written there; only finished months are archived")
    storage = _local(open_storage(base_dir))
    out = _local(open_storage(out_dir if out_dir is not None else default_archive_dir(base_dir)))
    if not storage.exists(storage.root):
        return []
    with _archive_lock(storage, wait=True):
        _cleanup(storage, out, apply=True)
        months = sorted(m for m in storage.list_dir(storage.root)
                        if is_month_partition(m) and m < before)
        plan = _plan(storage, out, months) if months else []
        if plan:
            out.make_dirs(out.root)
        done: list[MonthArchive] = []
        for p in plan:
            try:
                done.append(_archive_month(storage, out, p, catalog, lock_timeout))
            except QuantbotError as err:
                if not done:
                    raise
                raise type(err)(f"archived {', '.join(a.month for a in done)}; then: {err}") from None
        return done


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
            shutil.copyfileobj(src, dst, CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(target, m.mode & 0o777 or 0o644)
        os.utime(target, (m.mtime, m.mtime))


@legacy_arguments("archive", "base_dir", "catalog", "lock_timeout")
def restore_archive(archive: str | os.PathLike[str], *,
                    base_dir: str | os.PathLike[str] | Storage = "runs",
                    catalog: CatalogRef | None = None,
                    lock_timeout: float | None = None) -> RestoreResult:
    """Bring an archived month back under ``base_dir`` and sync the catalog ``catalog``.

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
    if catalog is not None:
        result.sync = catalog_all_runs(catalog=catalog, base_dir=storage, lock_timeout=lock_timeout)
    return result


__all__ = ["ArchiveError", "MonthArchive", "RestoreResult", "archive_months", "archive_name",
           "cleanup_archive_leftovers", "default_archive_dir", "restore_archive"]
