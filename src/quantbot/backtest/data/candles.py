"""Candles in: only the rows the alerts need, packed as a ``CandleSet``.

The source is scanned by DuckDB joined against small per-mint time ranges, so a candle
source larger than memory works and only the needed rows are materialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.data.columns import (
    CANDLE_ROLES,
    check_timestamps,
    check_ts_unit,
    epoch_ms_sql,
    quote,
    resolve_columns,
)
from quantbot.backtest.data.sources import Source, fetch_arrow, open_source
from quantbot.errors import DataError

_PRICES = ("open", "high", "low", "close")
_ROW_ORDER = "mint_id, ts_ms"  # duplicates are ordered in numpy (rare; a 7-key SQL sort is slow)


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

    Per alert: open times in [alert − pre_window_ms, alert + horizon_ms + interval_ms]
    (the entry candle opens at most one interval after the alert when the data has no
    hole there). Where the entry candle is later (a hole) or the data has a hole at the
    horizon, the window is extended to the entry + horizon_ms and the first candle at or
    after it, so the engine's ``missing_range`` check means "the data really ends". An alert
    with no candle at all within horizon + one interval after it gets no entry
    (``no_candles``).

    ``first_ts_ms``: the mint's first candle in the whole source (for ``too_new``). Every
    alert mint found in the source gets a block, possibly empty; mints absent from the
    source get none. Rows with a null open/high/low/close are dropped; zero or NaN prices are
    kept (the engine excludes them as ``invalid_price``). Duplicate (mint, ts) rows keep the
    largest volume (ties: lowest close), so the result never depends on file order.
    ``ts_unit`` ('s' | 'ms') fixes the unit of integer timestamps; None infers it per value
    (below 1e11 = seconds; a negative value is an error, see ``columns``). ``table``: the
    table of a DuckDB database.
    """
    check_ts_unit(ts_unit)
    if interval_ms <= 0 or horizon_ms < 0 or pre_window_ms < 0:
        raise DataError(f"load_candles: need interval_ms > 0, horizon_ms >= 0, pre_window_ms >= 0; "
                        f"got {interval_ms}, {horizon_ms}, {pre_window_ms}")
    mints, alert_mint, alert_ts = _alert_keys(alerts)
    if not mints:
        return CandleSet.empty()
    reach = int(horizon_ms) + int(interval_ms)
    ranges = _merge_ranges(mints, alert_mint, alert_ts - int(pre_window_ms), alert_ts + reach)
    with open_source(source, "candles", table=table) as src:
        scan = _Scan.of(src, ts_unit)
        rows = scan.rows_in(ranges)
        firsts = scan.first_ts(mints)
        anchors = _own_anchors(rows, alert_mint, alert_ts, reach)
        far = np.flatnonzero(anchors < 0)  # no candle within reach: find the first one after
        if far.size:
            anchors[far] = scan.first_at_or_after(_ranges_table(
                mints, alert_mint[far].tolist(), (alert_ts[far] + reach).tolist(),
                (alert_ts[far] + reach).tolist()))
        short = _short_windows(mints, rows, alert_mint, alert_ts, anchors, int(horizon_ms), reach)
        if short.num_rows:
            rows = pa.concat_tables([rows, scan.rows_through(short)])
            rows = rows.take(np.lexsort((rows.column("ts_ms").to_numpy(), rows.column("mint_id").to_numpy())))
    return _candle_set(mints, rows, firsts)


@dataclass(frozen=True)
class _Scan:
    """SQL over the source in quantbot's candle columns (mint, ts_ms, OHLCV as double)."""

    src: Source
    base: str  # a SELECT producing mint, ts_ms, open, high, low, close, volume
    casts: dict[str, str]  # input column -> SQL type, to name a column that fails to cast

    @classmethod
    def of(cls, src: Source, ts_unit: str | None) -> "_Scan":
        roles = resolve_columns(list(src.columns), CANDLE_ROLES, f"candles source {src.path}")
        src = src.with_varchar([roles["mint"]])
        ts_col = roles["ts"]
        ts_unit = check_timestamps(src, ts_col, ts_unit, f"candles source {src.path}")
        numbers = ", ".join(f"CAST({quote(roles[r])} AS DOUBLE) AS {r}" for r in (*_PRICES, "volume"))
        base = (f"SELECT CAST({quote(roles['mint'])} AS VARCHAR) AS mint, "
                f"{epoch_ms_sql(ts_col, src.columns[ts_col], ts_unit)} AS ts_ms, {numbers} "
                f"FROM {src.from_sql} WHERE "
                + " AND ".join(f"{quote(roles[r])} IS NOT NULL" for r in _PRICES))
        casts = {ts_col: "TIMESTAMPTZ", **{roles[r]: "DOUBLE" for r in (*_PRICES, "volume")}}
        return cls(src, base, casts)

    def _fetch(self, sql: str) -> pa.Table:
        return fetch_arrow(self.src, sql, "candles", self.casts)

    def rows_in(self, ranges: pa.Table) -> pa.Table:
        """Rows inside the [lo, hi] ranges (disjoint per mint), sorted by ``_ROW_ORDER``."""
        self.src.con.register("quantbot_ranges", ranges)
        return self._fetch(f"""
            SELECT r.mint_id, c.ts_ms, c.open, c.high, c.low, c.close, c.volume
            FROM ({self.base}) c JOIN quantbot_ranges r
              ON c.mint = r.mint AND c.ts_ms BETWEEN r.lo AND r.hi
            ORDER BY {_ROW_ORDER}""")

    def rows_through(self, ranges: pa.Table) -> pa.Table:
        """Rows in [lo, hi] plus, per range, the first row at or after hi (if any)."""
        self.src.con.register("quantbot_short", ranges)
        return self._fetch(f"""
            SELECT r.mint_id, c.ts_ms, c.open, c.high, c.low, c.close, c.volume
            FROM ({self.base}) c JOIN quantbot_short r ON c.mint = r.mint AND c.ts_ms >= r.lo
            QUALIFY c.ts_ms <= r.hi
                 OR c.ts_ms = min(c.ts_ms) FILTER (WHERE c.ts_ms >= r.hi) OVER (PARTITION BY r.range_id)
            ORDER BY {_ROW_ORDER}""")

    def first_at_or_after(self, ranges: pa.Table) -> np.ndarray:
        """Per range (in order), the open time of the mint's first candle at or after ``lo``;
        -1 where there is none."""
        self.src.con.register("quantbot_after", ranges)
        found = self._fetch(f"""
            SELECT r.range_id, min(c.ts_ms) AS ts_ms
            FROM ({self.base}) c JOIN quantbot_after r ON c.mint = r.mint AND c.ts_ms >= r.lo
            GROUP BY r.range_id""")
        out = np.full(ranges.num_rows, -1, dtype=np.int64)
        out[found.column("range_id").to_numpy()] = found.column("ts_ms").to_numpy()
        return out

    def first_ts(self, mints: list[str]) -> pa.Table:
        """(mint_id, first_ts_ms) of each mint present in the source: a min() restricted to
        the alert mints, never a full load."""
        self.src.con.register("quantbot_mints", pa.table({
            "mint_id": pa.array(np.arange(len(mints)), pa.int32()), "mint": pa.array(mints, pa.string())}))
        return self._fetch(f"""
            SELECT m.mint_id, min(c.ts_ms) AS first_ts_ms
            FROM ({self.base}) c JOIN quantbot_mints m ON c.mint = m.mint
            GROUP BY m.mint_id ORDER BY m.mint_id""")


def _alert_keys(alerts: pa.Table) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted unique alert mints, and each alert's mint index and time (ms)."""
    for name in ("mint", "alert_ts_ms"):
        if name not in alerts.column_names:
            raise DataError(f"load_candles: alerts table has no column {name!r} (use load_alerts)")
    mint_list = alerts.column("mint").cast(pa.string()).to_pylist()
    mints = sorted({m for m in mint_list if m is not None})
    lookup = {m: i for i, m in enumerate(mints)}
    alert_mint = np.fromiter((lookup.get(m, -1) for m in mint_list), np.int64, len(mint_list))
    alert_ts = alerts.column("alert_ts_ms").to_numpy(zero_copy_only=False).astype(np.int64)
    valid = alert_mint >= 0
    return mints, alert_mint[valid], alert_ts[valid]


def _merge_ranges(mints: list[str], mint_id: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> pa.Table:
    """Per mint, the union of [lo, hi] windows as disjoint ranges: overlapping windows (one
    mint called by several callers) must not load a candle twice."""
    order = np.lexsort((lo, mint_id))
    mint_id, lo, hi = mint_id[order], lo[order], hi[order]
    out_id: list[int] = []
    out_lo: list[int] = []
    out_hi: list[int] = []
    for j, a, b in zip(mint_id.tolist(), lo.tolist(), hi.tolist()):
        if out_id and out_id[-1] == j and a <= out_hi[-1]:
            out_hi[-1] = max(out_hi[-1], b)
        else:
            out_id.append(j)
            out_lo.append(a)
            out_hi.append(b)
    return _ranges_table(mints, out_id, out_lo, out_hi)


def _ranges_table(mints: list[str], ids: list[int], lo: list[int], hi: list[int]) -> pa.Table:
    return pa.table({"range_id": pa.array(np.arange(len(ids)), pa.int64()),
                     "mint_id": pa.array(ids, pa.int32()),
                     "mint": pa.array([mints[j] for j in ids], pa.string()),
                     "lo": pa.array(lo, pa.int64()), "hi": pa.array(hi, pa.int64())})


def _own_anchors(rows: pa.Table, alert_mint: np.ndarray, alert_ts: np.ndarray,
                 reach_ms: int) -> np.ndarray:
    """Per alert, the open time of its entry candle *within its own loaded window*
    [alert, alert + reach]; -1 where that window holds none.

    Only the alert's own window counts: rows loaded for a later alert on the same mint are
    not contiguous with it, so an entry found there could skip unloaded candles.
    """
    ids = rows.column("mint_id").to_numpy().astype(np.int64)
    ts = rows.column("ts_ms").to_numpy().astype(np.int64)
    out = np.full(len(alert_ts), -1, dtype=np.int64)
    starts = np.searchsorted(ids, alert_mint, side="left")
    ends = np.searchsorted(ids, alert_mint, side="right")
    for k, (t, s, e) in enumerate(zip(alert_ts.tolist(), starts.tolist(), ends.tolist())):
        i = s + int(np.searchsorted(ts[s:e], t, side="left"))
        if i < e and ts[i] <= t + reach_ms:
            out[k] = ts[i]
    return out


def _short_windows(mints: list[str], rows: pa.Table, alert_mint: np.ndarray, alert_ts: np.ndarray,
                   anchors: np.ndarray, horizon_ms: int, reach_ms: int) -> pa.Table:
    """Ranges still to load so that every alert with an entry candle (``anchors`` >= 0) has
    all candles up to entry + horizon and the first candle at or after it.

    The alert's own window [alert − pre, alert + reach] is loaded completely; beyond it,
    nothing is assumed (other alerts' rows on the same mint may leave holes between).
    """
    ids = rows.column("mint_id").to_numpy().astype(np.int64)
    ts = rows.column("ts_ms").to_numpy().astype(np.int64)
    out_id, out_lo, out_hi = [], [], []
    for j, t, anchor in zip(alert_mint.tolist(), alert_ts.tolist(), anchors.tolist()):
        if anchor < 0:
            continue  # no candle at or after the alert at all: no_candles
        need = anchor + horizon_ms
        own_end = t + reach_ms
        if need <= own_end:
            s, e = np.searchsorted(ids, j, side="left"), np.searchsorted(ids, j, side="right")
            seg = ts[s:e]
            if np.any((seg >= need) & (seg <= own_end)):
                continue  # the own window already reaches a candle at or after the horizon
        out_id.append(j)
        out_lo.append(max(anchor, own_end))
        out_hi.append(need)
    return _ranges_table(mints, out_id, out_lo, out_hi)


def _prefer_among_duplicates(ids: np.ndarray, ts: np.ndarray, rows: pa.Table) -> np.ndarray:
    """Row order (rows sorted by mint_id, ts_ms) that puts the preferred row of each
    duplicated (mint, ts) first: largest volume (NaN/null last), then lowest close, open,
    high, low. Deterministic whatever the file order."""
    same = (ids[1:] == ids[:-1]) & (ts[1:] == ts[:-1])
    order = np.arange(len(ts))
    if not same.any():
        return order
    member = np.zeros(len(ts), dtype=bool)
    member[1:] |= same
    member[:-1] |= same
    pos = np.flatnonzero(member)
    sub = rows.take(pos)
    col = {n: sub.column(n).to_numpy(zero_copy_only=False) for n in sub.column_names}
    volume = np.where(np.isnan(col["volume"]), -np.inf, col["volume"])
    local = np.lexsort((col["low"], col["high"], col["open"], col["close"], -volume,
                        col["ts_ms"], col["mint_id"]))
    order[pos] = pos[local]  # groups are contiguous, so each stays in place
    return order


def _candle_set(mints: list[str], rows: pa.Table, firsts: pa.Table) -> CandleSet:
    """Pack rows sorted by ``_ROW_ORDER`` into CSR blocks, one per mint present in the source."""
    present = firsts.column("mint_id").to_numpy().astype(np.int64)
    block_of = np.full(len(mints), -1, dtype=np.int64)
    block_of[present] = np.arange(len(present))
    ids = rows.column("mint_id").to_numpy().astype(np.int64)
    ts = rows.column("ts_ms").to_numpy().astype(np.int64)
    order = _prefer_among_duplicates(ids, ts, rows)
    first = np.ones(len(ts), dtype=bool)
    first[1:] = (ids[1:] != ids[:-1]) | (ts[1:] != ts[:-1])
    keep = order[first]  # the preferred row of each (mint, ts)
    counts = np.bincount(block_of[ids[keep]], minlength=len(present))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    no_duplicates = len(keep) == len(ts)

    def values(name: str) -> np.ndarray:
        column = rows.column(name).to_numpy(zero_copy_only=False)
        return np.ascontiguousarray(column if no_duplicates else column[keep], dtype=np.float64)

    return CandleSet(tuple(mints[j] for j in present), offsets,
                     np.ascontiguousarray(ts if no_duplicates else ts[keep]),
                     values("open"), values("high"), values("low"), values("close"),
                     values("volume"), firsts.column("first_ts_ms").to_numpy().astype(np.int64))
