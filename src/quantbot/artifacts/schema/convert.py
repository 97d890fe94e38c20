"""Liberal in, strict out: turn any tabular input into a table of an artifact's exact schema.

Accepted inputs: pyarrow Tables and RecordBatches, pandas and polars DataFrames, dicts of
columns, and lists of row dicts. Values are cast to the schema with safe casts only
(integer widening, integers to float); anything else is a SchemaMismatchError that names
the column, the first bad row and its value. Timestamp columns (``*_ts_ms``, ``t_*_ms``:
epoch ms, never a guessed unit) must also lie in the years 1-9999 (see ``timestamps``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from quantbot.artifacts.schema.arrow_schemas import BUILTIN_FEATURES, ArtifactSpec, ArtifactType
from quantbot.artifacts.schema.timestamps import (
    MAX_TS_MS,
    MIN_TS_MS,
    RANGE_TEXT,
    is_timestamp_column,
)
from quantbot.errors import SchemaMismatchError


def _type_name(value: Any) -> str:
    return f"{type(value).__module__.split('.')[0]}.{type(value).__name__}"


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Safe, lossless-by-kind casts only: a string never silently becomes a number."""
    if src == dst or pa.types.is_null(src):
        return True
    if pa.types.is_dictionary(src):
        return _castable(src.value_type, dst)
    if pa.types.is_int64(dst):
        return pa.types.is_integer(src)
    if pa.types.is_float64(dst):
        return pa.types.is_integer(src) or pa.types.is_floating(src) or pa.types.is_decimal(src)
    if pa.types.is_string(dst):
        return pa.types.is_string(src) or pa.types.is_large_string(src) or pa.types.is_string_view(src)
    return False


def _first_value(col: pa.ChunkedArray) -> tuple[int, Any]:
    """Row and value of the first non-null entry, for error messages."""
    offset = 0
    for chunk in col.chunks:
        valid = chunk.is_valid()
        if pc.any(valid).as_py():
            i = pc.index(valid, True).as_py()
            return offset + i, chunk[i].as_py()
        offset += len(chunk)
    return 0, None


def _first_failing_row(col: pa.ChunkedArray, dst: pa.DataType,
                       via: pa.DataType | None = None) -> tuple[int, Any]:
    """Row and value of the first entry that does not cast to ``dst`` (cast to ``via`` first:
    timestamps are scanned as their raw integers, which Python's datetime may not hold)."""
    row = 0
    for chunk in col.chunks:
        for value in chunk:
            try:
                one = pa.array([value.as_py()], type=chunk.type)
                (one if via is None else one.cast(via)).cast(dst, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
                return row, value.as_py()
            row += 1
    return 0, None


def _cast_column(kind: str, name: str, col: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    dst = field.type
    src = col.type
    if pa.types.is_timestamp(src) and pa.types.is_int64(dst) and name.endswith("_ms"):
        try:
            col = col.cast(pa.timestamp("ms", tz=src.tz)).cast(pa.int64())
        except pa.ArrowInvalid:  # a coarser unit whose value overflows int64 in ms
            row, value = _first_failing_row(col.cast(pa.int64()), pa.timestamp("ms"), via=src)
            raise SchemaMismatchError(
                f"{kind}: column {name} value {value} ({src}) at row {row} is out of range: "
                f"{RANGE_TEXT}") from None
        src = col.type
    if not _castable(src, dst):
        row, value = _first_value(col)
        raise SchemaMismatchError(
            f"{kind}: column {name} must be {dst}, got {src} (row {row}: {value!r})"
        )
    if src != dst:
        try:
            col = col.cast(dst, safe=True)
        except (pa.ArrowInvalid, OverflowError):
            row, value = _first_failing_row(col, dst)
            raise SchemaMismatchError(
                f"{kind}: column {name} value {value!r} at row {row} does not fit {dst}"
            ) from None
    if not field.nullable and col.null_count:
        row = pc.index(col.is_null(), True).as_py()
        raise SchemaMismatchError(f"{kind}: column {name} must not be null (row {row} is null)")
    if is_timestamp_column(name) and pa.types.is_int64(dst):
        _check_ts_range(kind, name, col)
    return col


def _check_ts_range(kind: str, name: str, col: pa.ChunkedArray) -> None:
    """Epoch-ms values outside the years 1-9999 are bad data (a wrong unit), never repaired."""
    bad = pc.or_(pc.less(col, MIN_TS_MS), pc.greater(col, MAX_TS_MS))
    if pc.any(bad).as_py():
        row = pc.index(bad.fill_null(False), True).as_py()
        raise SchemaMismatchError(f"{kind}: column {name} value {col[row].as_py()!r} at row {row} "
                                  f"is out of range: {RANGE_TEXT}")


def _extra_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Extra columns keep their type, normalised to plain Parquet-friendly variants."""
    typ = col.type
    if pa.types.is_null(typ):  # all null: no type to infer; strings keep runs comparable
        return col.cast(pa.string())
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = col.type
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        col = col.cast(pa.string())
    return col


def _known_fields(spec: ArtifactSpec) -> dict[str, pa.Field]:
    """The typed columns of an artifact (features: its built-in feature columns too)."""
    known = {f.name: f for f in spec.schema}
    if spec.type is ArtifactType.FEATURES:
        known.update({f.name: f for f in BUILTIN_FEATURES})
    return known


def _from_rows(rows: Sequence[Mapping[str, Any]], spec: ArtifactSpec, kind: str) -> pa.Table:
    """Rows to columns: every key of every row is a column (missing keys are null).

    Built column by column: when every row has the first row's keys (checked as the
    columns are extracted: equal sizes and no missing key mean equal key sets), values
    are fetched at C speed with itemgetter; otherwise row by row.
    """
    if not rows:
        return pa.table({})
    if not isinstance(rows[0], Mapping):
        raise SchemaMismatchError(f"{kind}: rows must be dicts, got {_type_name(rows[0])}")
    known = _known_fields(spec)
    names = list(rows[0])
    try:
        uniform = set(map(len, rows)) == {len(names)}
    except TypeError:
        raise _row_error(rows, [], kind) from None
    if not uniform:
        if not all(isinstance(row, Mapping) for row in rows):
            raise _row_error(rows, [], kind)
        names = list(dict.fromkeys(k for row in rows for k in row))
    arrays: dict[str, pa.Array] = {}
    for name in names:
        values = None
        if uniform:
            try:
                values = list(map(itemgetter(name), rows))
            except (KeyError, TypeError):  # a row lacks a key of the first: not uniform
                return _from_rows_slow(rows, spec, kind)
        arrays[name] = _column(rows, name, known.get(name), kind,
                               values if values is not None else [row.get(name) for row in rows])
    return pa.table(arrays)


def _from_rows_slow(rows: Sequence[Mapping[str, Any]], spec: ArtifactSpec, kind: str) -> pa.Table:
    """Rows whose key sets differ although their sizes match: the union of all keys."""
    if not all(isinstance(row, Mapping) for row in rows):
        raise _row_error(rows, [], kind)
    known = _known_fields(spec)
    names = list(dict.fromkeys(k for row in rows for k in row))
    return pa.table({n: _column(rows, n, known.get(n), kind, [row.get(n) for row in rows])
                     for n in names})


def _column(rows: Sequence[Mapping[str, Any]], name: str, field: pa.Field | None, kind: str,
            values: list[Any]) -> pa.Array:
    """One column's values as an Arrow array of the schema's type (inferred for extras)."""
    if field is None:  # an extra column: type inferred, then validated like any other
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise SchemaMismatchError(f"{kind}: column {name} has mixed types ({err})") from None
    if pa.types.is_integer(field.type):
        # pyarrow would truncate 1.5 to 1 in an int64 column: integer columns are built by
        # inference (which keeps floats as floats) and then cast safely like any other.
        try:
            col = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            raise _row_error(rows, [field], kind, strict_int=True) from None
        if not (pa.types.is_integer(col.type) or pa.types.is_null(col.type)):
            raise _row_error(rows, [field], kind, strict_int=True)
        return col
    try:
        return pa.array(values, type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        raise _row_error(rows, [field], kind) from None


def _row_error(rows: Sequence[Mapping[str, Any]], fields: list[pa.Field], kind: str,
               strict_int: bool = False) -> Exception:
    """The first (row, column) that Arrow cannot convert, as a clear error."""
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            return SchemaMismatchError(f"{kind}: row {i} is {_type_name(row)}, not a dict")
        for f in fields:
            value = row.get(f.name)
            if strict_int and value is not None and not hasattr(value, "__index__"):
                return SchemaMismatchError(f"{kind}: column {f.name} must be {f.type} (row {i}: {value!r})")
            try:
                pa.array([row.get(f.name)], type=f.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                return SchemaMismatchError(
                    f"{kind}: column {f.name} must be {f.type} (row {i}: {row.get(f.name)!r})")
    return SchemaMismatchError(f"{kind}: rows cannot be converted to the {kind} schema")


def run_id_column(run_id: str, n: int) -> pa.DictionaryArray:
    """``n`` copies of the run id as a one-entry dictionary (Parquet stores it as string)."""
    return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()).fill_null(0), pa.array([run_id]))


def with_plain_run_id(table: pa.Table) -> pa.Table:
    """The conformed table with run_id as plain (non-null) strings, for readers and DuckDB."""
    if "run_id" not in table.column_names:
        return table
    i = table.column_names.index("run_id")
    return table.set_column(i, pa.field("run_id", pa.string(), nullable=False),
                            table.column(i).cast(pa.string()))


def as_arrow_table(data: Any, spec: ArtifactSpec) -> pa.Table:
    """Any supported input as a pyarrow Table (types not yet conformed)."""
    kind = spec.type.value
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if isinstance(data, Mapping):
        cols = {}
        for name, values in data.items():
            try:
                cols[str(name)] = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                raise SchemaMismatchError(f"{kind}: column {name} cannot be read ({err})") from None
        try:
            return pa.table(cols)
        except pa.ArrowInvalid as err:
            raise SchemaMismatchError(f"{kind}: columns differ in length ({err})") from None
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return _from_rows(data, spec, kind)
    raise SchemaMismatchError(
        f"{kind}: unsupported data of type {_type_name(data)} (expected a pyarrow Table/RecordBatch, "
        "pandas or polars DataFrame, dict of columns, or list of dicts)"
    )


def _ruled_type(spec: ArtifactSpec, name: str) -> pa.DataType:
    """The type of an extra column the spec's rules admit, else the unknown-column error."""
    try:
        return spec.extra_type(name)  # type: ignore[return-value]
    except KeyError:
        raise SchemaMismatchError(
            f"{spec.type.value}: unknown column {name} (expected columns: "
            f"{', '.join(spec.schema.names)}, and level columns hit_<m>x, t_<m>x_ms)") from None


def conform(data: Any, spec: ArtifactSpec, run_id: str) -> pa.Table:
    """A table with exactly the artifact's schema (plus allowed extras), run_id filled in."""
    kind = spec.type.value
    table = spec.schema.empty_table() if data is None else as_arrow_table(data, spec)
    if table.num_columns == 0 and table.num_rows == 0:  # [] or {}: an empty artifact
        table = spec.schema.empty_table()
    n = table.num_rows
    present = set(table.column_names)
    if len(present) != len(table.column_names):
        raise SchemaMismatchError(f"{kind}: duplicate column names in {table.column_names}")
    columns: list[pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for field in spec.schema:
        name = field.name
        if name == "run_id" and name not in present:
            col = None
        elif name not in present:
            if not field.nullable:
                raise SchemaMismatchError(f"{kind}: missing required column {name}")
            col = pa.chunked_array([pa.nulls(n, field.type)], type=field.type)
        else:
            col = _cast_column(kind, name, table.column(name), field)
            if name == "run_id" and n:
                bad = pc.not_equal(col, pa.scalar(run_id))
                if pc.any(bad).as_py():
                    row = pc.index(bad, True).as_py()
                    raise SchemaMismatchError(
                        f"{kind}: column run_id holds {col[row].as_py()!r} at row {row}, "
                        f"but this run is {run_id}"
                    )
        if name == "run_id":  # one repeated value: dictionary-encoded, cheap at any size
            col = pa.chunked_array([run_id_column(run_id, n)])
            field = pa.field("run_id", col.type, nullable=False)
        columns.append(col)
        fields.append(field)
    extras = [c for c in table.column_names if c not in spec.schema.names]
    if extras and not spec.extra_columns:
        raise SchemaMismatchError(
            f"{kind}: unknown column {extras[0]} (expected columns: {', '.join(spec.schema.names)})"
        )
    builtins = {f.name: f for f in BUILTIN_FEATURES} if spec.type is ArtifactType.FEATURES else {}
    for name in extras:
        if name == "run_id":
            raise SchemaMismatchError(f"{kind}: column run_id is reserved")
        if name in builtins:
            col = _cast_column(kind, name, table.column(name), builtins[name])
            fields.append(builtins[name])
        elif spec.extra_rules:
            field = pa.field(name, _ruled_type(spec, name))
            col = _cast_column(kind, name, table.column(name), field)
            fields.append(field)
        else:
            col = _extra_column(table.column(name))
            fields.append(pa.field(name, col.type))
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
