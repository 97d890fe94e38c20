"""What a flow reads: where the alerts and candles come from, loading them, and their record.

:class:`InputSpec` names the sources (a file, folder or DuckDB database, with an optional
table or query), how to read them (column mapping, single-asset symbol, timestamp formats and
time zone, side, duplicate policy) and the alert filters; it round-trips through the manifest's
``parameters.inputs`` so that ``rerun`` reads the same data again. The alerts and candles
are paths, or in-memory frames (pandas/polars DataFrame, pyarrow Table): those are recorded
with ``kind: "memory"`` and no path, and a run made from them cannot be rerun (nothing on
disk to reload; :func:`InputSpec.from_manifest` says so). ``load_alert_inputs`` loads the
alerts, ``load_candle_inputs`` only the candles those alerts need; both fingerprint what
they loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from quantbot.backtest.data.alerts import check_side
from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.data.candles import check_duplicates
from quantbot.backtest.data.columns import check_ts_unit, parse_column_map
from quantbot.backtest.data.load import SourceRecord, describe_source, load_alerts, load_candles
from quantbot.backtest.data.sources import IN_MEMORY, check_ts_format, check_tz, in_memory_table
from quantbot.errors import DataError

Input = str | Path | Any
"""A path (file, folder, DuckDB database), a pandas/polars DataFrame or a pyarrow Table."""


@dataclass(frozen=True)
class InputSpec:
    """The sources of one backtest, how to read them, and the alert-time filters (ISO
    dates, inclusive). Every field is checked here, so a bad value fails before any run
    directory exists."""

    alerts: Input
    candles: Input
    alerts_query: str | None = None  # SQL over the view `alerts` (or a DuckDB file's tables)
    alerts_table: str | None = None
    candles_table: str | None = None
    ts_unit: str | None = None  # 's' | 'ms' for integer candle timestamps; None = inferred
    date_from: str | date | None = None  # stored as ISO text
    date_to: str | date | None = None
    candles_query: str | None = None  # SQL over the view `candles` (or a DuckDB file's tables)
    alerts_columns: str | Mapping[str, str] | None = None  # role -> column; stored as a dict
    candles_columns: str | Mapping[str, str] | None = None
    symbol: str | None = None  # the asset of a source with no asset column
    alerts_ts_format: str | None = None  # strptime format of text alert times
    candles_ts_format: str | None = None
    tz: str = "UTC"  # time zone of naive timestamps, both sources
    side: str | None = None  # 'long' | 'short' for every alert (no side column); None = long
    duplicates: str = "error"  # duplicate (mint, ts) candles: 'error' | 'first' | 'last'

    def __post_init__(self) -> None:
        for name in ("alerts", "candles"):
            value = getattr(self, name)
            frame = in_memory_table(value, name)  # a wrong type fails here, before any run
            object.__setattr__(self, name, os.fspath(value) if frame is None else frame)
        check_ts_unit(self.ts_unit)
        for what in ("alerts", "candles"):
            if getattr(self, f"{what}_query") and getattr(self, f"{what}_table"):
                raise DataError(f"{what}: pass either a query or a table, not both")
            key = f"{what}_columns"
            object.__setattr__(self, key, parse_column_map(getattr(self, key), what) or None)
        for name in ("date_from", "date_to"):
            object.__setattr__(self, name, _iso_date(getattr(self, name), name))
        for name in ("alerts_query", "candles_query", "symbol", "alerts_ts_format",
                     "candles_ts_format"):
            _check_text(getattr(self, name), name)
        check_tz(self.tz)
        check_ts_format(self.alerts_ts_format, "--alerts-ts-format")
        check_ts_format(self.candles_ts_format, "--candles-ts-format")
        object.__setattr__(self, "side", check_side(self.side))
        check_duplicates(self.duplicates)

    @classmethod
    def from_manifest(cls, parameters: dict[str, Any]) -> InputSpec:
        """The spec a run recorded (``parameters`` of its manifest); keys a run made before
        an option existed are absent and take its default."""
        inputs = parameters.get("inputs")
        if not isinstance(inputs, dict) or not {"alerts", "candles"} <= set(inputs):
            raise DataError("run manifest has no parameters.inputs.alerts/candles to rerun from")
        alerts, candles = inputs["alerts"], inputs["candles"]
        for name, record in (("alerts", alerts), ("candles", candles)):
            if record.get("kind") == IN_MEMORY or record.get("path") is None:
                raise DataError(f"cannot rerun: the run's {name} were passed in memory (a "
                                "DataFrame or Arrow table), so there is no file to read them "
                                "again from; run the flow again with the same frames instead")
        options = {k: parameters[k] for k in _OPTION_KEYS if parameters.get(k) is not None}
        return cls(alerts=alerts["path"], candles=candles["path"], alerts_query=alerts.get("query"),
                   alerts_table=alerts.get("table"), candles_table=candles.get("table"),
                   candles_query=candles.get("query"), date_from=parameters.get("date_from"),
                   date_to=parameters.get("date_to"), **options)


_OPTION_KEYS = ("ts_unit", "alerts_columns", "candles_columns", "symbol", "alerts_ts_format",
                "candles_ts_format", "tz", "side", "duplicates")


def load_alert_inputs(spec: InputSpec) -> tuple[pa.Table, SourceRecord]:
    """The alerts of ``spec`` (filtered by date) and their source record."""
    alerts = load_alerts(spec.alerts, query=spec.alerts_query, table=spec.alerts_table,
                         date_from=spec.date_from, date_to=spec.date_to,
                         columns=spec.alerts_columns, symbol=spec.symbol,
                         ts_format=spec.alerts_ts_format, tz=spec.tz, side=spec.side)
    record = describe_source(spec.alerts, alerts, table=spec.alerts_table, query=spec.alerts_query)
    return alerts, record


def load_candle_inputs(spec: InputSpec, alerts: pa.Table, *, interval_ms: int, horizon_ms: int,
                       pre_window_ms: int, entry: str = "close"
                       ) -> tuple[CandleSet, SourceRecord]:
    """Only the candles ``alerts`` need (pre-alert window to horizon), and their record;
    ``CandleSet.warnings`` holds the data notes (duplicates dropped or chosen)."""
    candles = load_candles(spec.candles, alerts, interval_ms=interval_ms, horizon_ms=horizon_ms,
                           pre_window_ms=pre_window_ms, ts_unit=spec.ts_unit,
                           table=spec.candles_table, query=spec.candles_query,
                           columns=spec.candles_columns, symbol=spec.symbol,
                           ts_format=spec.candles_ts_format, tz=spec.tz,
                           duplicates=spec.duplicates, entry=entry)
    return candles, describe_source(spec.candles, candles, table=spec.candles_table,
                                    query=spec.candles_query)


def check_paths_exist(spec: InputSpec) -> None:
    """Fail fast (before anything is loaded) when an input path does not exist."""
    for what, path in (("alerts", spec.alerts), ("candles", spec.candles)):
        if isinstance(path, str) and not Path(path).expanduser().exists():
            raise DataError(f"{what} input not found: {path}")


def _check_text(value: object, name: str) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise DataError(f"{name}: expected a non-empty string, got {value!r}")


def _iso_date(value: object, name: str) -> str | None:
    """An alert-time bound as ISO text (checked here, so a typo never creates a run)."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    text = str(value).strip()
    try:
        date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{name}: invalid date {text!r}: expected ISO date or datetime, "
                        "e.g. 2026-01-05 or 2026-01-05T12:00:00Z") from None
    return text
