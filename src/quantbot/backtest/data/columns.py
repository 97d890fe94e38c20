"""Which input column plays which role, and how its values become quantbot's types.

Exports from other tools name the same thing differently (``token_address`` for ``mint``,
``timestamp`` or ``time`` for the candle open time). A role is found by its canonical name
first; otherwise by exactly one of its known variants (case-insensitive). Two candidates
is an error rather than a guess, because a wrong guess gives silently wrong backtests.

A user can also say which column is which (``role -> column``, :func:`parse_column_map`;
CLI ``--alerts-columns`` / ``--candles-columns``): a mapped role is never guessed, and a
mapped column is no candidate for another role.

Text timestamps are read by DuckDB (ISO-8601 and what its CSV sniffer recognises) or, with
a format, by ``strptime``; naive ones are in the connection's time zone (``tz``, default UTC).

Integer (or float) timestamps are seconds or milliseconds. With no explicit unit each value
is read on its own: below 1e11 it is seconds, otherwise milliseconds. 1e11 s is the year
5138 and 1e11 ms is 1973-03-03, so every timestamp from 1973-03-03 up to the year 5138 is
read right either way (in particular all data from the year 2000 onward). A negative value
says nothing about its unit (-1e12 is 1938 in ms, the year -29719 in seconds): with no
explicit unit it is an error, never a guess. Every timestamp, whatever its type, must fall
in the years 1-9999 UTC once converted (``check_timestamps``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import duckdb

from quantbot.artifacts.schema.timestamps import MAX_TS_MS, MIN_TS_MS, RANGE_TEXT
from quantbot.errors import DataError

if TYPE_CHECKING:
    from quantbot.backtest.data.sources import Source

SECONDS_BELOW = 100_000_000_000
"""Integer timestamps below this (1e11) are seconds, the others milliseconds."""

_ADDRESS_NAMES = ("token_address", "mint_address", "token_mint", "address", "contract_address")
_SYMBOL_NAMES = ("symbol", "ticker", "asset", "instrument", "pair")
"""Names of the asset column (quantbot's ``mint``) in alerts and candles alike."""

ALERT_ROLES: dict[str, tuple[str, ...]] = {
    "call_id": ("call_id", "id", "alert_id", "callid"),
    "mint": ("mint", *_ADDRESS_NAMES, "ca", *_SYMBOL_NAMES),
    "caller_name": ("caller_name", "caller", "caller_handle", "caller_username"),
    "chain": ("chain", "network", "blockchain"),
    # alert_ts_ms first: when both it and created_at are present (our own alerts artifact),
    # the integer wins and created_at is rewritten from it.
    "alert_ts_ms": ("alert_ts_ms", "created_at", "alert_ts", "alert_time", "timestamp_ms",
                    "timestamp", "ts", "time", "datetime", "called_at", "date"),
    "side": ("side", "direction"),
}

CANDLE_ROLES: dict[str, tuple[str, ...]] = {
    "mint": ("mint", *_ADDRESS_NAMES, *_SYMBOL_NAMES),
    "ts": ("ts", "ts_ms", "timestamp", "timestamp_ms", "time", "open_time", "datetime", "t",
           "unix_time", "unixtime", "date"),
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price"),
    "volume": ("volume", "v", "vol", "volume_usd", "base_volume"),
}

ROLE_KEYS: dict[str, dict[str, str]] = {
    "alerts": {**{r: r for r in ALERT_ROLES}, "alert_ts": "alert_ts_ms", "symbol": "mint",
               "asset": "mint"},
    "candles": {**{r: r for r in CANDLE_ROLES}, "timestamp": "ts", "symbol": "mint",
                "asset": "mint"},
}
"""Per source, the keys a column mapping accepts and the role each one names."""

_ROLES = {"alerts": ALERT_ROLES, "candles": CANDLE_ROLES}

_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                            "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})

_CANONICAL_BY_ROLE = {"alert_ts_ms": ("alert_ts_ms", "created_at")}


def columns_flag(what: str) -> str:
    """The CLI flag that maps the columns of ``what`` ('alerts' | 'candles')."""
    return f"--{what}-columns"


def parse_column_map(value: str | Mapping[str, str] | None, what: str) -> dict[str, str]:
    """``'call_id=id,alert_ts=alert_time'`` (or the same as a dict) as {role: column}.

    Keys are role names or their synonyms (``ROLE_KEYS``: ``alert_ts``, ``timestamp``,
    ``symbol``/``asset`` for mint), case-insensitive, returned as quantbot's role names.
    Raises DataError (one line, listing the valid keys) for a pair without ``=``, an empty
    side, an unknown role or a role given twice.
    """
    if value is None:
        return {}
    flag, keys = columns_flag(what), ROLE_KEYS[what]
    if isinstance(value, str):
        pairs = [p.strip() for p in value.split(",") if p.strip()]
        items = []
        for pair in pairs:
            key, sep, column = pair.partition("=")
            if not sep or not key.strip() or not column.strip():
                raise DataError(f"{flag}: {pair!r} is not role=column (roles: {', '.join(keys)})")
            items.append((key.strip(), column.strip()))
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        raise DataError(f"{flag}: expected 'role=column,...' or a dict, got {type(value).__name__}")
    mapping: dict[str, str] = {}
    for key, column in items:
        role = keys.get(str(key).strip().lower()) if isinstance(key, str) else None
        if role is None:
            raise DataError(f"{flag}: unknown role {key!r} (roles: {', '.join(keys)})")
        if not isinstance(column, str) or not column.strip():
            raise DataError(f"{flag}: role {key!r} needs a column name, got {column!r}")
        if role in mapping:
            raise DataError(f"{flag}: role {role!r} is mapped twice ({mapping[role]!r}, {column!r})")
        mapping[role] = column.strip()
    return mapping


def resolve_columns(
    names: list[str], what: str, source: str, optional: tuple[str, ...] = (),
    mapping: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """Map each role of ``what`` ('alerts' | 'candles') to the one input column that holds
    it (None: absent and optional). ``mapping`` ({role: column}) fixes roles explicitly.

    Raises DataError naming the role, the columns present and the mapping flag that fixes
    it when a role is missing or ambiguous, or a mapped column is absent.
    """
    mapping = dict(mapping or {})
    found: dict[str, str | None] = {role: _mapped(names, column, role, what, source)
                                    for role, column in mapping.items()}
    taken = {c.lower() for c in found.values() if c}
    by_lower: dict[str, list[str]] = {}
    for name in names:
        if name.lower() not in taken:
            by_lower.setdefault(name.lower(), []).append(name)
    for role, variants in _ROLES[what].items():
        if role not in found:
            found[role] = _resolve_role(role, variants, by_lower, source, names, role in optional,
                                        what)
    return found


def _mapped(names: list[str], column: str, role: str, what: str, source: str) -> str:
    """The input column a mapping names: exact, else the one case-insensitive match."""
    if column in names:
        return column
    matches = [n for n in names if n.lower() == column.lower()]
    if len(matches) == 1:
        return matches[0]
    raise DataError(f"{source}: {columns_flag(what)} maps {_role_key(role, what)} to column "
                    f"{column!r}, which is not there; columns present: {', '.join(names)}")


def _role_key(role: str, what: str) -> str:
    """The shortest mapping key for ``role`` (``alert_ts`` rather than ``alert_ts_ms``)."""
    return min((k for k, r in ROLE_KEYS[what].items() if r == role), key=len)


def _resolve_role(
    role: str, variants: tuple[str, ...], by_lower: dict[str, list[str]], source: str,
    names: list[str], optional: bool, what: str,
) -> str | None:
    fix = f"pick one with {columns_flag(what)} {_role_key(role, what)}=<column>"
    for canonical in _CANONICAL_BY_ROLE.get(role, (variants[0],)):
        exact = by_lower.get(canonical, [])
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise DataError(f"{source}: column {role!r} is ambiguous: {', '.join(exact)}; {fix}")
    candidates = [n for v in variants for n in by_lower.get(v, [])]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise DataError(
            f"{source}: column {role!r} is ambiguous: candidates {', '.join(candidates)}; "
            f"rename or drop all but one, or {fix}"
        )
    if optional:
        return None
    raise DataError(
        f"{source}: missing column {role!r} (also accepted: {', '.join(variants[1:])}); "
        f"columns present: {', '.join(names)}; map one with {columns_flag(what)} "
        f"{_role_key(role, what)}=<column> ({what}_columns= in Python)"
    )


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quote(name: str) -> str:
    """A SQL identifier for DuckDB (input column names can hold anything)."""
    return '"' + name.replace('"', '""') + '"'


def is_numeric(duckdb_type: str) -> bool:
    """Integer, float or decimal: a timestamp column in seconds or ms rather than a datetime."""
    kind = duckdb_type.upper()
    return kind in _INTEGER_TYPES or kind in ("FLOAT", "DOUBLE") or kind.startswith("DECIMAL")


def _is_temporal(duckdb_type: str) -> bool:
    return duckdb_type.upper().startswith(("TIMESTAMP", "DATE"))


def _parsed_sql(column: str, duckdb_type: str, ts_format: str | None, strict: bool) -> str:
    """SQL for ``column`` as a TIMESTAMPTZ: ``strptime`` with ``ts_format`` (a non-temporal
    column, read as text), else a cast; ``strict`` False gives NULL for a bad value."""
    col = quote(column)
    if ts_format is not None and not _is_temporal(duckdb_type):
        parse = "strptime" if strict else "try_strptime"
        return f"CAST({parse}(CAST({col} AS VARCHAR), {literal(ts_format)}) AS TIMESTAMPTZ)"
    return f"{'' if strict else 'TRY_'}CAST({col} AS TIMESTAMPTZ)"


def epoch_ms_sql(column: str, duckdb_type: str, ts_unit: str | None,
                 ts_format: str | None = None) -> str:
    """SQL that turns ``column`` (of ``duckdb_type``) into int64 epoch ms (UTC).

    With ``ts_format`` (strptime), a text or numeric column is parsed with it. Otherwise
    integer and float columns are seconds or ms (``ts_unit``, else inferred per value, see
    the module docstring; ``check_timestamps`` first, so no negative value is inferred);
    datetimes and ISO strings are cast, naive ones read in the connection's time zone.
    """
    col = quote(column)
    kind = duckdb_type.upper()
    if ts_format is not None or kind.startswith(("TIMESTAMP", "DATE", "VARCHAR")):
        return f"epoch_ms({_parsed_sql(column, duckdb_type, ts_format, strict=True)})"
    if kind in _INTEGER_TYPES:
        millis, seconds = f"CAST({col} AS BIGINT)", f"CAST({col} AS BIGINT) * 1000"
    elif kind in ("FLOAT", "DOUBLE") or kind.startswith("DECIMAL"):
        millis, seconds = f"CAST(round({col}) AS BIGINT)", f"CAST(round({col} * 1000) AS BIGINT)"
    else:
        raise DataError(f"column {column!r} has type {duckdb_type}, which is not a timestamp")
    if ts_unit == "ms":
        return millis
    if ts_unit == "s":
        return seconds
    return f"CASE WHEN {col} < {SECONDS_BELOW} THEN {seconds} ELSE {millis} END"


def _raw_bounds(ts_unit: str | None) -> tuple[int, int]:
    """The accepted raw values of a numeric column read in ``ts_unit`` (None: inferred, so
    non-negative, and ms above 1e11)."""
    if ts_unit == "s":
        return -(-MIN_TS_MS // 1000), MAX_TS_MS // 1000
    return (MIN_TS_MS if ts_unit == "ms" else 0), MAX_TS_MS


def check_timestamps(src: Source, column: str, ts_unit: str | None, label: str,
                     unit_hint: str = "give ts_unit ('s' or 'ms'; CLI: --ts-unit)",
                     ts_format: str | None = None, format_flag: str = "--ts-format") -> str | None:
    """Check every timestamp of ``column`` (one aggregate scan) and return the unit to read it in.

    Raises DataError naming ``label`` (the source), the column, the first bad row (1-based)
    and its value: a negative number with no ``ts_unit`` (``unit_hint`` says how to give
    one), a text value that ``ts_format`` (strptime; ``format_flag`` names its option) does
    not match or, without one, that is not ISO-8601, or a time outside the years 1-9999.
    Returns ``ts_unit`` if given, else 's' or 'ms' when every numeric value is on one side
    of 1e11 (SQL then filters on the raw column, much faster than a per-value CASE), else
    None (per value; also for datetime and string columns). Cost: one streaming scan of the column (5M rows: about 0.3 s).
    """
    col, kind = quote(column), src.columns[column]
    numeric = is_numeric(kind) and ts_format is None
    if numeric:
        lo, hi = _raw_bounds(ts_unit)
        value = col
    else:
        lo, hi = MIN_TS_MS, MAX_TS_MS
        value = f"epoch_ms({_parsed_sql(column, kind, ts_format, strict=False)})"
    negative = f"{value} < 0" if numeric and ts_unit is None else "false"
    unmatched = (f"{col} IS NOT NULL AND {value} IS NULL"
                 if not numeric and not _is_temporal(kind) else "false")
    outside = f"NOT ({value} BETWEEN {lo} AND {hi})"
    try:
        low, high, any_negative, any_unmatched, any_outside = src.con.sql(
            f"SELECT min({value}), max({value}), bool_or({negative}), bool_or({unmatched}), "
            f"bool_or({outside}) FROM {src.from_sql}").fetchall()[0]
    except duckdb.Error as exc:  # e.g. a Parquet timestamp DuckDB cannot even read
        first = str(exc).strip().splitlines()[0]
        if ts_format is not None:
            raise DataError(f"{label}: column {column!r}: {format_flag} {ts_format!r} cannot be "
                            f"used: {first}") from None
        raise DataError(f"{label}: column {column!r}: {first} (out of range?)") from None
    if any_negative:
        raise _first_bad(src, column, negative, label,
                         f"is negative, so its unit (s or ms) cannot be inferred: {unit_hint}")
    if any_unmatched:
        raise _first_bad(src, column, unmatched, label, _unreadable(ts_format, format_flag))
    if any_outside:
        raise _first_bad(src, column, outside, label, f"is out of range: {RANGE_TEXT}")
    if ts_unit is not None or low is None or not numeric:
        return ts_unit
    if high < SECONDS_BELOW:
        return "s"
    return "ms" if low >= SECONDS_BELOW else None


def _unreadable(ts_format: str | None, format_flag: str) -> str:
    """Why a text timestamp was not read, naming the option that reads it."""
    if ts_format is not None:
        return f"does not match {format_flag} {ts_format!r}"
    return (f"is not an ISO-8601 timestamp: give its strptime format with {format_flag} "
            "(e.g. '%m/%d/%Y %I:%M %p')")


def _first_bad(src: Source, column: str, condition: str, label: str, why: str) -> DataError:
    """The first row (1-based, in source order) matching ``condition``, as a DataError."""
    col = quote(column)
    row, text = src.con.sql(
        f"SELECT quantbot_row, CAST({col} AS VARCHAR) FROM (SELECT row_number() OVER () AS "
        f"quantbot_row, {col} FROM {src.from_sql}) WHERE {condition} ORDER BY 1 LIMIT 1"
    ).fetchall()[0]
    shown = text if is_numeric(src.columns[column]) else repr(text)
    return DataError(f"{label}: column {column!r} row {row}: value {shown} {why}")


def check_ts_unit(ts_unit: str | None) -> None:
    if ts_unit not in (None, "s", "ms"):
        raise DataError(f"invalid ts_unit {ts_unit!r}: expected 's', 'ms' or None (inferred)")
