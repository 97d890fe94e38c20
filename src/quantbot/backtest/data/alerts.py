"""Alerts in: any supported source to the ``alerts`` artifact schema (see SCHEMAS.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from quantbot.backtest.data.columns import (
    ALERT_ROLES,
    check_timestamps,
    epoch_ms_sql,
    quote,
    resolve_columns,
)
from quantbot.backtest.data.sources import fetch_arrow, open_source
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
        unit = check_timestamps(src, ts_col, None, label,
                                unit_hint="give the alert time as a datetime or ISO-8601 string")
        select.append(f"{epoch_ms_sql(ts_col, src.columns[ts_col], unit)} AS alert_ts_ms")
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
