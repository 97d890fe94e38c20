"""The fast path of the candle loader: a plain Parquet file (or an in-memory Arrow table)
read by pyarrow in batches and filtered by one compiled pass, without SQL.

Why: DuckDB's scan, cast and join cost about twice a bare ``pyarrow.parquet.read_table``
of the same file, and a candle file is the largest input a run reads. The fast path applies
only where its result is the SQL path's bit for bit (same rows, values, first candle per
mint and timestamp unit): a single Parquet file or an Arrow table, no query, no timestamp
format, a text (or dictionary) asset column, integer or datetime timestamps, numeric
prices, and no empty asset or time (Parquet statistics say so before anything is read). Anything else, including every value the SQL path would refuse (a negative epoch
with no unit, a time outside the years 1-9999), returns None and the SQL path runs, so
errors keep their one wording.

Cost: one read of the columns it needs and one compiled pass that copies the kept rows
straight into the output; no sort when the file is sorted by asset and time. Memory: one
run of row groups (about 2M rows) plus the rows kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numba import njit

from quantbot.artifacts.schema.timestamps import MAX_TS_MS, MIN_TS_MS
from quantbot.backtest.data.columns import SECONDS_BELOW

_BATCH_ROWS = 1 << 21
_MAX_ROWS = 1 << 30
"""Above this many source rows the outputs (reserved at the source's size, 56 bytes a row
of virtual memory, only the kept rows touched) are left to the SQL path."""
_VALUES = ("open", "high", "low", "close", "volume")
_SCALE = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}
"""Per Arrow time unit, (multiply, floor-divide) to get ms."""
_NONE = np.iinfo(np.int64).max


@dataclass(frozen=True)
class DirectRead:
    """What the SQL path's ``rows_in`` + ``first_ts`` + ``check_timestamps`` return."""

    rows: dict[str, np.ndarray]  # range_id, ts_ms (int64) and _VALUES (float64), source order
    first_ts: pa.Table  # mint_id (int32), first_ts_ms (int64) of each mint present, by mint_id
    ts_unit: str | None  # the unit integer timestamps were read in (None: per value or datetime)
    ordered: bool  # rows already sorted by (range_id, ts_ms): a file sorted by asset and time


def read_direct(path: Path, frame: pa.Table | None, roles: dict[str, str | None],
                asset: str | None, mints: list[str], range_mint: np.ndarray, lo: np.ndarray,
                hi: np.ndarray, ts_unit: str | None, tz: str) -> DirectRead | None:
    """Rows of ``frame`` (or the Parquet file ``path``) inside the ranges [lo, hi] of mint
    ``mints[range_mint]`` (disjoint, sorted by mint then lo), or None when the fast path
    does not apply (see the module docstring). ``roles``: role -> column (mint None: one
    ``asset``); naive datetimes are read in ``tz``."""
    wanted = [c for c in dict.fromkeys(roles.values()) if c]
    keys = [c for c in (roles["mint"], roles["ts"]) if c]  # a row without them is reported
    if frame is not None:
        schema = frame.schema
        if any(frame.column(c).null_count for c in keys):
            return None
    else:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        if not _no_nulls(parquet, keys):
            return None
    if not _eligible(schema, roles, tz):
        return None
    if frame is not None:
        batches, total = iter(frame.select(wanted).to_batches(_BATCH_ROWS)), frame.num_rows
    else:
        batches, total = _row_group_batches(parquet, wanted), parquet.metadata.num_rows
    if total == 0 or total > _MAX_ROWS:
        return None  # an empty source, or outputs too large to reserve: the SQL path
    return _read(batches, total, roles, asset, mints, range_mint, lo, hi, ts_unit)


def _row_group_batches(parquet: pq.ParquetFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The file in runs of whole row groups of about ``_BATCH_ROWS`` rows or more: the
    reader decodes a run's columns in parallel, faster than ``iter_batches``."""
    meta, group = parquet.metadata, []
    rows = 0
    for g in range(meta.num_row_groups):
        group.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= _BATCH_ROWS or g == meta.num_row_groups - 1:
            table = parquet.read_row_groups(group, columns=columns, use_threads=True)
            yield from table.to_batches()
            group, rows = [], 0


def _no_nulls(parquet: pq.ParquetFile, columns: list[str]) -> bool:
    """True when every row group's statistics state zero nulls in ``columns`` (missing
    statistics: unknown, so False)."""
    meta = parquet.metadata
    index = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    if any(c not in index for c in columns):
        return False  # a nested column: not a plain candle file
    for g in range(meta.num_row_groups):
        for c in columns:
            stats = meta.row_group(g).column(index[c]).statistics
            if stats is None or not stats.has_null_count or stats.null_count:
                return False
    return True


def _eligible(schema: pa.Schema, roles: dict[str, str | None], tz: str) -> bool:
    def kind(role: str) -> pa.DataType | None:
        column = roles.get(role)
        return None if column is None else schema.field(column).type

    mint = kind("mint")
    if mint is not None:
        text = mint.value_type if pa.types.is_dictionary(mint) else mint
        if not (pa.types.is_string(text) or pa.types.is_large_string(text)):
            return False
    ts = kind("ts")
    if ts is None:
        return False
    if pa.types.is_timestamp(ts):
        if ts.tz is None and tz != "UTC":
            return False  # naive times in another zone: the SQL path converts them
    elif not pa.types.is_integer(ts):
        return False  # float epochs are rounded by SQL, text needs parsing
    return all(t is None or pa.types.is_integer(t) or pa.types.is_floating(t)
               for t in map(kind, _VALUES))


def _read(batches: Iterator[pa.RecordBatch], total: int, roles: dict[str, str | None],
          asset: str | None, mints: list[str], range_mint: np.ndarray, lo: np.ndarray,
          hi: np.ndarray, ts_unit: str | None) -> DirectRead | None:
    """``total``: the source's row count, the capacity of the output columns. They are
    allocated once at that size and the kept rows copied straight in: only the pages
    written are ever touched (the rest stays virtual), and no second copy joins batches."""
    starts = np.searchsorted(range_mint, np.arange(len(mints) + 1)).astype(np.int64)
    first = np.full(len(mints), _NONE, dtype=np.int64)
    bounds = np.array([_NONE, -_NONE - 1], dtype=np.int64)  # min and max raw timestamp
    lookup = pa.array(mints, pa.string())
    asset_id = mints.index(asset) if asset in mints else -1
    out = {"range_id": np.empty(total, np.int64), "ts_ms": np.empty(total, np.int64),
           **{v: np.empty(total, np.float64) for v in _VALUES}}
    state = np.array([0, -1, -1, 1], dtype=np.int64)  # size, last range, last ts, in order
    for batch in batches:
        n = batch.num_rows
        mint_id = (_mint_ids(batch.column(roles["mint"]), lookup) if roles["mint"]
                   else np.full(n, asset_id, dtype=np.int64))
        ts = _epoch_ms(batch.column(roles["ts"]), ts_unit, bounds)  # type: ignore[arg-type]
        if ts is None:
            return None
        _gather(mint_id, ts, *(_floats(batch, roles[v], n) for v in _VALUES), starts, lo, hi,
                first, out["range_id"], out["ts_ms"], *(out[v] for v in _VALUES), state)
    unit = ts_unit if ts_unit is not None or bounds[0] > bounds[1] else _unit(bounds)
    present = np.flatnonzero(first != _NONE)
    firsts = pa.table({"mint_id": pa.array(present, pa.int32()),
                       "first_ts_ms": pa.array(first[present], pa.int64())})
    size = int(state[0])
    return DirectRead({name: column[:size] for name, column in out.items()}, firsts, unit,
                      bool(state[3]))


def _mint_ids(column: pa.Array, lookup: pa.Array) -> np.ndarray:
    """Each row's index in the sorted alert mints, -1 for a mint no alert names."""
    if pa.types.is_dictionary(column.type):
        per_value = _mint_ids(column.dictionary, lookup)
        return per_value[column.indices.to_numpy(zero_copy_only=False)]
    found = pc.index_in(column, value_set=lookup.cast(column.type))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _epoch_ms(column: pa.Array, ts_unit: str | None, bounds: np.ndarray) -> np.ndarray | None:
    """The open times in epoch ms, read as the SQL path reads them (integers: seconds or
    ms, per value below/above 1e11 unless ``ts_unit``), or None for a value it would
    refuse or read differently (negative, outside the years 1-9999). ``bounds`` collects
    the raw min and max of integer timestamps, from which the unit is inferred."""
    if pa.types.is_timestamp(column.type):
        raw = column.cast(pa.int64()).to_numpy()
        times, per = _SCALE[column.type.unit]
        if raw.size and (raw.min() < 0 or raw.max() // per > MAX_TS_MS // times):
            return None  # before 1970 (SQL's truncation and flooring may differ) or too late
        ms = raw * times // per
    else:
        raw = column.to_numpy().astype(np.int64, copy=False)
        if raw.size == 0:
            return raw
        low, high = int(raw.min()), int(raw.max())
        bounds[0], bounds[1] = min(bounds[0], low), max(bounds[1], high)
        if low < 0 or (ts_unit == "s" and high > MAX_TS_MS // 1000):
            return None
        if ts_unit == "ms" or (ts_unit is None and low >= SECONDS_BELOW):
            ms = raw
        elif ts_unit == "s" or high < SECONDS_BELOW:
            ms = raw * 1000
        else:  # seconds and ms mixed: each value read on its own
            ms = np.where(raw < SECONDS_BELOW, raw * 1000, raw)
    if ms.size and (ms.min() < MIN_TS_MS or ms.max() > MAX_TS_MS):
        return None
    return ms


def _unit(bounds: np.ndarray) -> str | None:
    """``check_timestamps``'s inference: every raw value on one side of 1e11, else None."""
    if bounds[1] < SECONDS_BELOW:
        return "s"
    return "ms" if bounds[0] >= SECONDS_BELOW else None


def _floats(batch: pa.RecordBatch, column: str | None, n: int) -> np.ndarray:
    if column is None:
        return np.full(n, np.nan)  # no volume column
    values = batch.column(column)
    if values.null_count:  # an empty price is NaN, which the engine's candle checks exclude
        values = values.cast(pa.float64()).fill_null(np.nan)
    return values.to_numpy().astype(np.float64, copy=False)


@njit(cache=True, nogil=True)
def _gather(mint_id, ts, o, h, lo_px, c, v, starts, lo, hi, first, out_rid, out_ts, out_o,
            out_h, out_l, out_c, out_v, state):  # pragma: no cover - numba
    """Copy each row whose time lies in a range of its mint to the outputs at ``state[0]``
    (advanced), with that range's id; track the smallest time of each mint and whether the
    kept rows come in (range, time) order (``state[1:4]``). A row's range: binary search
    among its mint's ranges ``starts[j]:starts[j + 1]`` (sorted by lo, disjoint)."""
    size, last_rid, last_ts, ordered = state[0], state[1], state[2], state[3]
    for i in range(mint_id.size):
        j = mint_id[i]
        if j < 0:
            continue
        t = ts[i]
        first[j] = min(first[j], t)
        a, b = starts[j], starts[j + 1]
        while a < b:
            m = (a + b) >> 1
            if lo[m] <= t:
                a = m + 1
            else:
                b = m
        if a == starts[j] or t > hi[a - 1]:
            continue
        r = a - 1
        if r < last_rid or (r == last_rid and t < last_ts):
            ordered = 0
        last_rid, last_ts = r, t
        out_rid[size], out_ts[size] = r, t
        out_o[size], out_h[size], out_l[size], out_c[size], out_v[size] = o[i], h[i], lo_px[i], c[i], v[i]
        size += 1
    state[0], state[1], state[2], state[3] = size, last_rid, last_ts, ordered
