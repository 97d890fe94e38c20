"""What a flow reads: where the alerts and candles come from, loading them, and their record.

:class:`InputSpec` names the sources (a file, folder or DuckDB database, with an optional
table or query) and the alert filters; it round-trips through the manifest's
``parameters.inputs`` so that ``rerun`` reads the same data again. :func:`load_inputs`
loads the alerts, then only the candles those alerts need, and fingerprints both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.data.columns import check_ts_unit
from quantbot.backtest.data.load import SourceRecord, describe_source, load_alerts, load_candles
from quantbot.errors import DataError


@dataclass(frozen=True)
class InputSpec:
    """The sources of one backtest and the alert-time filters (ISO dates, inclusive)."""

    alerts: str
    candles: str
    alerts_query: str | None = None
    alerts_table: str | None = None
    candles_table: str | None = None
    ts_unit: str | None = None  # 's' | 'ms' for integer candle timestamps; None = inferred
    date_from: str | date | None = None  # stored as ISO text
    date_to: str | date | None = None

    def __post_init__(self) -> None:
        check_ts_unit(self.ts_unit)
        if self.alerts_query and self.alerts_table:
            raise DataError("alerts: pass either a query or a table, not both")
        for name in ("date_from", "date_to"):
            object.__setattr__(self, name, _iso_date(getattr(self, name), name))

    def source_records(self) -> dict[str, dict[str, object]]:
        """``parameters.inputs`` before loading (no rows or fingerprint yet): what a run that
        fails while reading its inputs records."""
        return {"alerts": {"path": _absolute(self.alerts), "table": self.alerts_table,
                           "query": self.alerts_query},
                "candles": {"path": _absolute(self.candles), "table": self.candles_table,
                            "query": None}}

    @classmethod
    def from_manifest(cls, parameters: dict[str, Any]) -> "InputSpec":
        """The spec a run recorded (``parameters`` of its manifest)."""
        inputs = parameters.get("inputs")
        if not isinstance(inputs, dict) or not {"alerts", "candles"} <= set(inputs):
            raise DataError("run manifest has no parameters.inputs.alerts/candles to rerun from")
        alerts, candles = inputs["alerts"], inputs["candles"]
        return cls(alerts=alerts["path"], candles=candles["path"], alerts_query=alerts.get("query"),
                   alerts_table=alerts.get("table"), candles_table=candles.get("table"),
                   ts_unit=parameters.get("ts_unit"), date_from=parameters.get("date_from"),
                   date_to=parameters.get("date_to"))


@dataclass(frozen=True)
class LoadedInputs:
    """Alerts (``alerts`` artifact schema, sorted by time), their candles, and what was read."""

    alerts: pa.Table
    candles: CandleSet
    alerts_source: SourceRecord
    candles_source: SourceRecord

    def manifest_inputs(self) -> dict[str, dict[str, object]]:
        """``parameters.inputs`` of the manifest: path, kind, table, query, rows, fingerprint."""
        return {"alerts": self.alerts_source.to_dict(), "candles": self.candles_source.to_dict()}


def load_alert_inputs(spec: InputSpec) -> tuple[pa.Table, SourceRecord]:
    """The alerts of ``spec`` (filtered by date) and their source record."""
    alerts = load_alerts(spec.alerts, query=spec.alerts_query, table=spec.alerts_table,
                         date_from=spec.date_from, date_to=spec.date_to)
    record = describe_source(spec.alerts, alerts, table=spec.alerts_table, query=spec.alerts_query)
    return alerts, record


def load_candle_inputs(spec: InputSpec, alerts: pa.Table, *, interval_ms: int, horizon_ms: int,
                       pre_window_ms: int) -> tuple[CandleSet, SourceRecord]:
    """Only the candles ``alerts`` need (pre-alert window to horizon), and their record."""
    candles = load_candles(spec.candles, alerts, interval_ms=interval_ms, horizon_ms=horizon_ms,
                           pre_window_ms=pre_window_ms, ts_unit=spec.ts_unit,
                           table=spec.candles_table)
    return candles, describe_source(spec.candles, candles, table=spec.candles_table)


def check_paths_exist(spec: InputSpec) -> None:
    """Fail fast (before anything is loaded) when an input path does not exist."""
    for what, path in (("alerts", spec.alerts), ("candles", spec.candles)):
        if not Path(path).expanduser().exists():
            raise DataError(f"{what} input not found: {path}")


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


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
