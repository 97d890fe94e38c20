"""Alerts and candles in: from CSV, Parquet (file, folder, Hive dataset) or DuckDB.

Every source is read through DuckDB, so candles are filtered while scanning: only the rows
inside some alert's window are materialised, and a candle source larger than memory works.
Column-name variants and timestamp units are handled in ``columns``; formats in ``sources``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantbot.backtest.candles import CandleSet
from quantbot.backtest.columns import (
    ALERT_ROLES,
    CANDLE_ROLES,
    check_ts_unit,
    epoch_ms_sql,
    quote,
    resolve_columns,
)
from quantbot.backtest.sources import detect_kind, fetch_arrow, open_source
from quantbot.errors import DataError

ALERT_COLUMNS = ("call_id", "mint", "caller_name", "chain", "alert_ts_ms", "created_at")
_ALERT_SCHEMA = pa.schema([("call_id", pa.string()), ("mint", pa.string()),
                           ("caller_name", pa.string()), ("chain", pa.string()),
                           ("alert_ts_ms", pa.int64()), ("created_at", pa.string())])
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_alerts(
    source: str | Path,
    *,
    query: str | None = None,
    table: str | None = None,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
) -> pa.Table:
    """Alerts as the ``alerts`` artifact schema, sorted by (alert_ts_ms, call_id).

    ``query`` (SQL) or ``table`` select the rows of a DuckDB database, opened read-only.
    The alert time comes from ``alert_ts_ms`` (or a variant: int seconds/ms, datetime, ISO
    string; UTC) and ``created_at`` is rewritten from it as ISO-8601 UTC with ms.
    No ``chain`` column: chain is filled with "unknown" (as are null chains); no
    ``caller_name`` column is an error. Extra columns are kept after the standard six.
    ``date_from`` / ``date_to`` (ISO date or datetime, naive = UTC) keep alerts with
    date_from <= time <= date_to; a date-only ``date_to`` includes that whole day.
    """
    lo, hi = _bound_ms(date_from, "date_from", upper=False), _bound_ms(date_to, "date_to", upper=True)
    with open_source(source, "alerts", table=table, query=query) as src:
        label = f"alerts source {src.path}"
        roles = resolve_columns(list(src.columns), ALERT_ROLES, label, optional=("chain",))
        text_roles = ("call_id", "mint", "caller_name", "chain")
        src = src.with_varchar([roles[r] for r in text_roles if roles[r]])
        used = {name for name in roles.values() if name}
        extras = [n for n in src.columns if n not in used and n.lower() not in ALERT_COLUMNS]
        ts_col = roles["alert_ts_ms"]
        select = [f"CAST({quote(roles[r])} AS VARCHAR) AS {r}" for r in text_roles[:3]]
        chain = f"CAST({quote(roles['chain'])} AS VARCHAR)" if roles["chain"] else "NULL"
        select.append(f"coalesce({chain}, 'unknown') AS chain")
        select.append(f"{epoch_ms_sql(ts_col, src.columns[ts_col], None)} AS alert_ts_ms")
        select += [quote(n) for n in extras]
        raw = fetch_arrow(src, f"SELECT {', '.join(select)} FROM {src.from_sql}", "alerts",
                          casts={ts_col: "TIMESTAMPTZ"})
    _check_alerts(raw, roles, label)
    if lo is not None:
        raw = raw.filter(pc.greater_equal(raw.column("alert_ts_ms"), lo))
    if hi is not None:
        raw = raw.filter(pc.less_equal(raw.column("alert_ts_ms"), hi))
    raw = raw.sort_by([("alert_ts_ms", "ascending"), ("call_id", "ascending")])
    created = pc.strftime(raw.column("alert_ts_ms").cast(pa.timestamp("ms", tz="UTC")),
                          format="%Y-%m-%dT%H:%M:%SZ")  # %S carries .mmm for ms timestamps
    columns = [raw.column(n) for n in ALERT_COLUMNS[:5]] + [created]
    columns += [raw.column(n) for n in extras]
    schema = pa.schema(list(_ALERT_SCHEMA) + [raw.schema.field(n) for n in extras])
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(columns, schema)], schema=schema)


def load_candles(
    source: str | Path,
    alerts: pa.Table,
    *,
    interval_ms: int,
    horizon_ms: int,
    pre_window_ms: int,
    ts_unit: str | None = None,
    table: str | None = None,
) -> CandleSet:
    """The candles the alerts need, as a ``CandleSet``, without reading the whole source.

    Per alert mint, rows with open time in [alert − pre_window_ms, alert + horizon_ms +
    interval_ms] for some alert (the anchor can open up to one interval after the alert).
    ``first_ts_ms`` is the mint's first candle in the whole source (for ``too_new``). Every
    alert mint found in the source gets a block, possibly empty (no candle in its windows);
    mints absent from the source get none. Rows with a null open/high/low/close are
    dropped; zero or NaN prices are kept (the engine excludes them as ``invalid_price``).
    Duplicate (mint, ts) rows keep the one with the largest volume (ties: lowest close),
    so the result never depends on file order. ``ts_unit`` ('s' | 'ms') fixes the unit of
    integer timestamps; None infers it per value (see ``columns``).
    """
    check_ts_unit(ts_unit)
    if interval_ms <= 0 or horizon_ms < 0 or pre_window_ms < 0:
        raise DataError(f"load_candles: need interval_ms > 0, horizon_ms >= 0, pre_window_ms >= 0; "
                        f"got {interval_ms}, {horizon_ms}, {pre_window_ms}")
    mints, ranges = _mint_ranges(alerts, int(pre_window_ms), int(horizon_ms) + int(interval_ms))
    if not mints:
        return CandleSet.empty()
    with open_source(source, "candles", table=table) as src:
        roles = resolve_columns(list(src.columns), CANDLE_ROLES, f"candles source {src.path}")
        src = src.with_varchar([roles["mint"]])
        src.con.register("quantbot_ranges", ranges)
        src.con.register("quantbot_mints", pa.table({"mint_id": np.arange(len(mints), dtype=np.int32),
                                                     "mint": pa.array(mints, pa.string())}))
        prices = [f"CAST({quote(roles[r])} AS DOUBLE) AS {r}" for r in ("open", "high", "low", "close")]
        base = (f"SELECT CAST({quote(roles['mint'])} AS VARCHAR) AS mint, "
                f"{epoch_ms_sql(roles['ts'], src.columns[roles['ts']], ts_unit)} AS ts_ms, "
                f"{', '.join(prices)}, CAST({quote(roles['volume'])} AS DOUBLE) AS volume "
                f"FROM {src.from_sql} WHERE "
                + " AND ".join(f"{quote(roles[r])} IS NOT NULL" for r in ("open", "high", "low", "close")))
        casts = {roles["ts"]: "TIMESTAMPTZ", **{roles[r]: "DOUBLE" for r in
                                               ("open", "high", "low", "close", "volume")}}
        rows = fetch_arrow(src, f"""
            SELECT r.mint_id, c.ts_ms, c.open, c.high, c.low, c.close, c.volume
            FROM ({base}) c JOIN quantbot_ranges r
              ON c.mint = r.mint AND c.ts_ms BETWEEN r.lo AND r.hi
            ORDER BY r.mint_id, c.ts_ms, c.volume DESC NULLS LAST, c.close, c.open, c.high, c.low
        """, "candles", casts)
        firsts = fetch_arrow(src, f"""
            SELECT m.mint_id, min(c.ts_ms) AS first_ts_ms
            FROM ({base}) c JOIN quantbot_mints m ON c.mint = m.mint
            GROUP BY m.mint_id ORDER BY m.mint_id
        """, "candles", casts)
    return _candle_set(mints, rows, firsts)


def _mint_ranges(alerts: pa.Table, before_ms: int, after_ms: int) -> tuple[list[str], pa.Table]:
    """Sorted unique alert mints and, per mint, the union of its alerts' windows as
    disjoint [lo, hi] ranges (overlapping windows would load a candle twice)."""
    for name in ("mint", "alert_ts_ms"):
        if name not in alerts.column_names:
            raise DataError(f"load_candles: alerts table has no column {name!r} (use load_alerts)")
    mint_col = alerts.column("mint").cast(pa.string())
    mints = sorted(set(m for m in mint_col.to_pylist() if m is not None))
    lookup = {m: i for i, m in enumerate(mints)}
    mint_ids = np.fromiter((lookup.get(m, -1) for m in mint_col.to_pylist()), np.int64, len(mint_col))
    ts = alerts.column("alert_ts_ms").to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.lexsort((ts, mint_ids))
    mint_ids, lo, hi = mint_ids[order], ts[order] - before_ms, ts[order] + after_ms
    out_id, out_lo, out_hi = [], [], []
    for k in range(len(order)):
        if mint_ids[k] < 0:
            continue
        if out_id and out_id[-1] == mint_ids[k] and lo[k] <= out_hi[-1]:
            out_hi[-1] = max(out_hi[-1], int(hi[k]))
        else:
            out_id.append(int(mint_ids[k]))
            out_lo.append(int(lo[k]))
            out_hi.append(int(hi[k]))
    ranges = pa.table({"mint_id": pa.array(out_id, pa.int32()),
                       "mint": pa.array([mints[i] for i in out_id], pa.string()),
                       "lo": pa.array(out_lo, pa.int64()), "hi": pa.array(out_hi, pa.int64())})
    return mints, ranges


def _candle_set(mints: list[str], rows: pa.Table, firsts: pa.Table) -> CandleSet:
    """Pack sorted rows into CSR blocks: one per mint present in the source."""
    present = firsts.column("mint_id").to_numpy().astype(np.int64)
    block_of = np.full(len(mints), -1, dtype=np.int64)
    block_of[present] = np.arange(len(present))
    ids = rows.column("mint_id").to_numpy().astype(np.int64)
    ts = rows.column("ts_ms").to_numpy().astype(np.int64)
    # Rows arrive sorted with the preferred duplicate first: keep the first of each (mint, ts).
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = (ids[1:] != ids[:-1]) | (ts[1:] != ts[:-1])
    blocks = block_of[ids[keep]]
    counts = np.bincount(blocks, minlength=len(present))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def col(name: str) -> np.ndarray:
        return np.ascontiguousarray(rows.column(name).to_numpy(zero_copy_only=False)[keep], dtype=np.float64)

    first_ts = firsts.column("first_ts_ms").to_numpy().astype(np.int64)
    return CandleSet(tuple(mints[i] for i in present), offsets, np.ascontiguousarray(ts[keep]),
                     col("open"), col("high"), col("low"), col("close"), col("volume"), first_ts)


def _check_alerts(raw: pa.Table, roles: dict[str, str | None], label: str) -> None:
    for role in ("call_id", "mint", "caller_name", "alert_ts_ms"):
        nulls = pc.is_null(raw.column(role))
        if pc.any(nulls).as_py():
            row = pc.index(nulls, True).as_py()
            raise DataError(f"{label}: column {roles[role]!r} is empty at row {row + 1}")
    counts = pc.value_counts(raw.column("call_id"))
    dupes = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(dupes):
        raise DataError(f"{label}: duplicate call_id {sorted(dupes.to_pylist())[0]!r} "
                        f"({len(dupes)} duplicated id(s) in column {roles['call_id']!r})")


def _bound_ms(value: str | date | None, name: str, *, upper: bool) -> int | None:
    """An alert-time filter bound in epoch ms; a date-only upper bound ends with its day."""
    if value is None:
        return None
    whole_day = isinstance(value, date) and not isinstance(value, datetime)
    if isinstance(value, str):
        text = value.strip()
        try:
            whole_day = len(text) == 10
            value = date.fromisoformat(text) if whole_day else datetime.fromisoformat(text)
        except ValueError:
            raise DataError(f"{name}: invalid date {text!r}: expected ISO date or datetime, "
                            "e.g. 2026-01-05 or 2026-01-05T12:00:00Z") from None
    if whole_day:
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return (start - _EPOCH) // timedelta(milliseconds=1) + (_DAY_MS - 1 if upper else 0)
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class SourceRecord:
    """What a run read, for its manifest: a rerun compares ``fingerprint`` to check it read
    the same data (the file may have been edited in place)."""

    path: str  # absolute
    kind: str  # csv | parquet | parquet_dataset | duckdb
    table: str | None
    query: str | None
    rows: int  # rows loaded (alerts, or candles in the CandleSet)
    fingerprint: str  # "sha256:<64 hex>" of the loaded data

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def describe_source(source: str | Path, loaded: pa.Table | CandleSet, *, table: str | None = None,
                    query: str | None = None) -> SourceRecord:
    """A ``SourceRecord`` for data that ``load_alerts`` / ``load_candles`` returned."""
    path = Path(source).expanduser().resolve()
    if isinstance(loaded, CandleSet):
        rows, fingerprint = loaded.n_rows, fingerprint_candles(loaded)
    else:
        rows, fingerprint = loaded.num_rows, fingerprint_alerts(loaded)
    return SourceRecord(str(path), detect_kind(path), table, query, rows, fingerprint)


def fingerprint_alerts(alerts: pa.Table) -> str:
    """sha256 of the table's Arrow IPC stream (one batch, no schema metadata), so chunking
    and metadata do not change it; values, column names and types do."""
    canonical = alerts.replace_schema_metadata(None).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, canonical.schema) as writer:
        writer.write_table(canonical, max_chunksize=max(canonical.num_rows, 1))
    return "sha256:" + hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def fingerprint_candles(candles: CandleSet) -> str:
    """sha256 over the mints (length-prefixed UTF-8) then every array as little-endian bytes,
    in the ``CandleSet`` field order."""
    digest = hashlib.sha256()
    for mint in candles.mints:
        encoded = mint.encode()
        digest.update(len(encoded).to_bytes(4, "little") + encoded)
    for name in ("offsets", "ts_ms", "open", "high", "low", "close", "volume", "first_ts_ms"):
        array = getattr(candles, name)
        digest.update(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    return "sha256:" + digest.hexdigest()
