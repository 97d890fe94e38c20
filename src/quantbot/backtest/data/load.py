"""Alerts and candles in, from CSV, Parquet (file, folder, Hive dataset) or DuckDB, and a
record of what was read (path, kind, sha256 of the loaded data) for a run's manifest.

Every source is read through DuckDB, so candles are filtered while scanning: only the rows
near some alert are materialised, and a candle source larger than memory works. A plain
Parquet file or Arrow table of candles takes a faster path with the same result
(``direct_scan``). Column-name variants and timestamp units: ``columns``; formats: ``sources``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from quantbot.backtest.data.alerts import ALERT_COLUMNS, load_alerts
from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.data.candles import load_candles
from quantbot.backtest.data.sources import IN_MEMORY, detect_kind, in_memory_table

__all__ = ["ALERT_COLUMNS", "SourceRecord", "describe_source", "fingerprint_alerts",
           "fingerprint_candles", "load_alerts", "load_candles"]


@dataclass(frozen=True)
class SourceRecord:
    """What a run read, for its manifest: a rerun compares ``fingerprint`` to check it read
    the same data (the file may have been edited in place)."""

    path: str | None  # absolute; None for an in-memory input (kind "memory")
    kind: str  # csv | parquet | parquet_dataset | duckdb | memory
    table: str | None
    query: str | None
    rows: int  # rows loaded (alerts, or candles in the CandleSet)
    fingerprint: str  # "sha256:<64 hex>" of the loaded data

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def describe_source(source: str | Path | object, loaded: pa.Table | CandleSet, *,
                    table: str | None = None, query: str | None = None) -> SourceRecord:
    """A ``SourceRecord`` for data that ``load_alerts`` / ``load_candles`` returned. The
    fingerprint is of the loaded content, so an in-memory frame is fingerprinted exactly
    like the same rows read from a file."""
    if isinstance(loaded, CandleSet):
        rows, fingerprint = loaded.n_rows, fingerprint_candles(loaded)
    else:
        rows, fingerprint = loaded.num_rows, fingerprint_alerts(loaded)
    if in_memory_table(source, "input") is not None:
        return SourceRecord(None, IN_MEMORY, table, query, rows, fingerprint)
    path = Path(source).expanduser().resolve()  # type: ignore[arg-type]
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
