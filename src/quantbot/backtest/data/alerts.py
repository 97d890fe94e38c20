"""Alerts in: any supported source to the ``alerts`` artifact schema (see SCHEMAS.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from quantbot.backtest.data.columns import (
    check_timestamps,
    epoch_ms_sql,
    literal,
    parse_column_map,
    quote,
    resolve_columns,
)
from quantbot.backtest.data.sources import fetch_arrow, open_source
from quantbot.errors import DataError

ALERT_COLUMNS = ("call_id", "mint", "caller_name", "chain", "alert_ts_ms", "created_at", "side")
SIDES = ("long", "short")
_ALERT_SCHEMA = pa.schema([("call_id", pa.string()), ("mint", pa.string()),
                           ("caller_name", pa.string()), ("chain", pa.string()),
                           ("alert_ts_ms", pa.int64()), ("created_at", pa.string()),
                           ("side", pa.string())])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT_ROLES = ("call_id", "mint", "caller_name", "chain", "side")


def load_alerts(
    source: str | Path | object,
    *,
    query: str | None = None,
    table: str | None = None,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
    columns: str | Mapping[str, str] | None = None,
    symbol: str | None = None,
    ts_format: str | None = None,
    tz: str = "UTC",
    side: str | None = None,
) -> pa.Table:
    """Alerts as the ``alerts`` artifact schema, sorted by (alert_ts_ms, call_id).

    ``query`` (SQL) selects rows: from the view ``alerts`` over a file or frame, or from
    the tables of a DuckDB database (opened read-only), where ``table`` names one.
    ``columns`` maps roles to columns (``parse_column_map``); other roles by name or alias.
    The alert time comes from ``alert_ts_ms`` (or a variant: int seconds/ms, datetime,
    string; text parsed with ``ts_format`` (strptime) when given; naive times are in
    ``tz``) and ``created_at`` is rewritten from it as ISO-8601 UTC with ms.
    No asset column: every alert's mint is ``symbol`` (else the error names the fix).
    No ``chain`` column: chain is filled with "unknown" (as are null chains); no
    ``caller_name`` column is an error. ``side``: 'long' | 'short' from a side column
    (case-insensitive) or, without one, ``side`` for every alert (default long; both is
    an error). Extra columns are kept after the standard seven.
    ``date_from`` / ``date_to`` (ISO date or datetime, naive = ``tz``) keep alerts with
    date_from <= time <= date_to; a date-only ``date_to`` includes that whole day.
    """
    side = check_side(side)
    zone = ZoneInfo(tz) if tz != "UTC" else UTC
    lo = _bound_ms(date_from, "date_from", upper=False, zone=zone)
    hi = _bound_ms(date_to, "date_to", upper=True, zone=zone)
    mapping = parse_column_map(columns, "alerts")
    with open_source(source, "alerts", table=table, query=query, tz=tz) as src:
        label = f"alerts source {src.path}"
        optional = ("chain", "side") + (("mint",) if symbol is not None else ())
        roles = resolve_columns(list(src.columns), "alerts", label, optional, mapping)
        if side is not None and roles["side"]:
            raise DataError(f"{label}: --side {side} given, but column {roles['side']!r} holds "
                            "each alert's side; drop one of them")
        ts_col = roles["alert_ts_ms"]
        as_text = [roles[r] for r in _TEXT_ROLES if roles[r]] + ([ts_col] if ts_format else [])
        src = src.with_varchar(as_text)
        used = {name for name in roles.values() if name}
        extras = [n for n in src.columns if n not in used and n.lower() not in ALERT_COLUMNS]
        select = [_text_sql(roles[r], r) for r in ("call_id", "caller_name")]
        select.append(_text_sql(roles["mint"], "mint", symbol))
        select.append(f"coalesce({_text_sql(roles['chain'], None)}, 'unknown') AS chain")
        select.append(f"lower(trim({_text_sql(roles['side'], None, side or 'long')})) AS side")
        unit = check_timestamps(src, ts_col, None, label,
                                unit_hint="give the alert time as a datetime or ISO-8601 string",
                                ts_format=ts_format, format_flag="--alerts-ts-format")
        select.append(f"{epoch_ms_sql(ts_col, src.columns[ts_col], unit, ts_format)} AS alert_ts_ms")
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
    out = [raw.column(n) for n in ALERT_COLUMNS[:5]] + [created, raw.column("side")]
    out += [raw.column(n) for n in extras]
    schema = pa.schema(list(_ALERT_SCHEMA) + [raw.schema.field(n) for n in extras])
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(out, schema)], schema=schema)


def check_side(side: str | None) -> str | None:
    """``side`` normalised ('long' | 'short' | None = not given); anything else is refused."""
    if side is None:
        return None
    if not isinstance(side, str) or side.strip().lower() not in SIDES:
        raise DataError(f"side: expected 'long' or 'short', got {side!r}")
    return side.strip().lower()


def _text_sql(column: str | None, alias: str | None, constant: str | None = None) -> str:
    """A column as text (``constant`` when the source has none), optionally aliased."""
    value = f"CAST({quote(column)} AS VARCHAR)" if column else (
        literal(constant) if constant is not None else "NULL")
    return f"{value} AS {alias}" if alias else value


def _check_alerts(raw: pa.Table, roles: dict[str, str | None], label: str) -> None:
    for role in ("call_id", "mint", "caller_name", "alert_ts_ms", "side"):
        nulls = pc.is_null(raw.column(role))
        if pc.any(nulls).as_py():
            row = pc.index(nulls, True).as_py()
            raise DataError(f"{label}: column {roles[role]!r} is empty at row {row + 1}")
    bad = pc.invert(pc.is_in(raw.column("side"), pa.array(SIDES)))
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise DataError(f"{label}: column {roles['side']!r} row {row + 1}: value "
                        f"{raw.column('side')[row].as_py()!r} is not a side: expected long or short")
    counts = pc.value_counts(raw.column("call_id"))
    dupes = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(dupes):
        raise DataError(f"{label}: duplicate call_id {sorted(dupes.to_pylist())[0]!r} "
                        f"({len(dupes)} duplicated id(s) in column {roles['call_id']!r})")


def _bound_ms(value: str | date | None, name: str, *, upper: bool, zone: tzinfo) -> int | None:
    """An alert-time filter bound in epoch ms (naive: in ``zone``); a date-only upper bound
    ends with its day."""
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
        day = date(value.year, value.month, value.day) + timedelta(days=1 if upper else 0)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)  # a DST day is 23 or 25 h
        return (start - _EPOCH) // timedelta(milliseconds=1) - (1 if upper else 0)
    moment = value if value.tzinfo else value.replace(tzinfo=zone)
    return (moment - _EPOCH) // timedelta(milliseconds=1)
