"""conform(): every accepted input kind, safe casts only, errors naming column/row/value."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from qbtest import ROW_FACTORIES, rows, trade_row

from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, BUILTIN_FEATURES, ArtifactType
from quantbot.artifacts.schema.convert import conform
from quantbot.errors import SchemaMismatchError, UnknownArtifactTypeError

RID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER = "11111111-2222-4333-8444-555555555555"
TRADES = ARTIFACT_SPECS[ArtifactType.TRADES]


def spec(kind: str):
    return ARTIFACT_SPECS[ArtifactType(kind)]


def plain_schema(kind: str) -> pa.Schema:
    """The schema as it reads back from Parquet (run_id as a plain string)."""
    return spec(kind).schema


def check_exact(table: pa.Table, kind: str) -> None:
    s = spec(kind).schema
    assert table.column_names[: len(s)] == s.names
    for f in s:
        col = table.schema.field(f.name)
        if f.name == "run_id":
            assert col.type.value_type == pa.string() if pa.types.is_dictionary(col.type) \
                else col.type == pa.string()
        else:
            assert col.type == f.type, (f.name, col.type, f.type)
            assert col.nullable == f.nullable


def trades_pylist(n=3):
    return rows("trades", n)


def as_dict_of_columns(rs):
    return {k: [r[k] for r in rs] for k in rs[0]}


@pytest.mark.parametrize("make", [
    pytest.param(lambda rs: pa.Table.from_pylist(rs), id="arrow-table"),
    pytest.param(lambda rs: pa.RecordBatch.from_pylist(rs), id="arrow-batch"),
    pytest.param(lambda rs: pd.DataFrame(rs), id="pandas"),
    pytest.param(lambda rs: pl.DataFrame(rs), id="polars"),
    pytest.param(as_dict_of_columns, id="dict-of-columns"),
    pytest.param(lambda rs: rs, id="list-of-dicts"),
    pytest.param(lambda rs: tuple(rs), id="tuple-of-dicts"),
])
def test_every_input_kind_gives_the_same_table(make):
    rs = trades_pylist()
    out = conform(make(rs), TRADES, RID)
    check_exact(out, "trades")
    expected = [{"run_id": RID, **r} for r in rs]
    got = out.to_pylist()
    assert got == expected


@pytest.mark.parametrize("empty", [None, [], {}, pa.table({}), pd.DataFrame(), ()],
                         ids=["none", "list", "dict", "arrow", "pandas", "tuple"])
@pytest.mark.parametrize("kind", [t.value for t in ArtifactType])
def test_empty_inputs_give_full_schema(empty, kind):
    out = conform(empty, spec(kind), RID)
    assert out.num_rows == 0
    check_exact(out, kind)
    assert out.column_names == spec(kind).schema.names


def test_empty_frame_with_columns_keeps_schema():
    df = pd.DataFrame({k: pd.Series([], dtype=object) for k in trade_row()})
    out = conform(df, TRADES, RID)
    assert out.num_rows == 0
    check_exact(out, "trades")


def test_safe_casts_int_to_float_and_int32_to_int64():
    t = pa.Table.from_pylist(trades_pylist(2))
    t = t.set_column(t.column_names.index("entry_px"), "entry_px", pa.array([1, 2], pa.int64()))
    t = t.set_column(t.column_names.index("entry_ts_ms"), "entry_ts_ms", pa.array([5, 6], pa.int32()))
    t = t.set_column(t.column_names.index("exit_px"), "exit_px", pa.array([1.5, 2.5], pa.float32()))
    t = t.set_column(t.column_names.index("time_exposed_ms"), "time_exposed_ms",
                     pa.array([1, 2], pa.uint8()))
    out = conform(t, TRADES, RID)
    check_exact(out, "trades")
    assert out.column("entry_px").to_pylist() == [1.0, 2.0]
    assert out.column("entry_ts_ms").to_pylist() == [5, 6]
    assert out.column("exit_px").to_pylist() == [1.5, 2.5]


def test_pandas_int_column_into_float_and_numpy_types():
    df = pd.DataFrame(trades_pylist(2))
    df["entry_px"] = np.array([3, 4], dtype=np.int16)
    df["time_exposed_ms"] = np.array([7, 8], dtype=np.int32)
    out = conform(df, TRADES, RID)
    assert out.column("entry_px").to_pylist() == [3.0, 4.0]
    assert out.column("time_exposed_ms").type == pa.int64()


def test_uint64_overflow_names_value():
    rs = trades_pylist(2)
    t = pa.Table.from_pylist(rs)
    t = t.set_column(t.column_names.index("entry_ts_ms"), "entry_ts_ms",
                     pa.array([1, 2**63 + 5], pa.uint64()))
    with pytest.raises(SchemaMismatchError) as err:
        conform(t, TRADES, RID)
    msg = str(err.value)
    assert "entry_ts_ms" in msg and "row 1" in msg and str(2**63 + 5) in msg


@pytest.mark.parametrize("column,bad,row", [
    ("entry_px", "1.5", 1),           # string in a float column
    ("entry_ts_ms", 1.5, 2),          # float in an int column
    ("stop_out", "yes", 0),           # string in a bool column
    ("call_id", 17, 1),               # int in a string column
    ("time_exposed_ms", "60000", 2),
])
def test_wrong_types_name_column_row_and_value_in_lists(column, bad, row):
    rs = trades_pylist(3)
    rs[row][column] = bad
    with pytest.raises(SchemaMismatchError) as err:
        conform(rs, TRADES, RID)
    msg = str(err.value)
    assert column in msg and f"row {row}" in msg and repr(bad) in msg, msg


@pytest.mark.parametrize("make", [
    pytest.param(lambda rs: pd.DataFrame(rs), id="pandas"),
    pytest.param(as_dict_of_columns, id="dict"),
    pytest.param(lambda rs: pa.Table.from_pylist(rs), id="arrow"),
])
def test_string_column_in_float_field_rejected(make):
    rs = trades_pylist(3)
    for r in rs:
        r["entry_px"] = "1.0"
    with pytest.raises(SchemaMismatchError) as err:
        conform(make(rs), TRADES, RID)
    msg = str(err.value)
    assert "entry_px" in msg and "row 0" in msg and "'1.0'" in msg


def test_float_column_in_int_field_rejected_even_if_integral():
    df = pd.DataFrame(trades_pylist(2))
    df["entry_ts_ms"] = df["entry_ts_ms"].astype(float)
    with pytest.raises(SchemaMismatchError, match="entry_ts_ms"):
        conform(df, TRADES, RID)


def test_null_in_required_column_named():
    rs = trades_pylist(3)
    rs[2]["exit_px"] = None
    with pytest.raises(SchemaMismatchError) as err:
        conform(rs, TRADES, RID)
    assert "exit_px" in str(err.value) and "row 2" in str(err.value)


def test_missing_required_column():
    rs = trades_pylist(2)
    for r in rs:
        del r["exit_reason"]
    for data in (rs, pd.DataFrame(rs), pa.Table.from_pylist(rs)):
        with pytest.raises(SchemaMismatchError, match="missing required column exit_reason"):
            conform(data, TRADES, RID)


def test_nullable_columns_are_optional():
    rs = trades_pylist(2)
    for r in rs:
        del r["tail_capture"]
    out = conform(rs, TRADES, RID)
    check_exact(out, "trades")
    assert out.column("tail_capture").to_pylist() == [None, None]
    out = conform([{k: v for k, v in r.items() if k not in ("t_3x_ms", "t_4x_ms", "dd_to_2x_bps")}
                   for r in rows("paths", 2)], spec("paths"), RID)
    assert out.column("t_3x_ms").to_pylist() == [None, None]
    check_exact(out, "paths")


def test_nan_and_inf_are_legal_in_float_columns():
    rs = trades_pylist(3)
    rs[0]["entry_px"], rs[1]["entry_px"], rs[2]["entry_px"] = math.nan, math.inf, -math.inf
    rs[0]["tail_capture"] = math.nan
    out = conform(rs, TRADES, RID)
    vals = out.column("entry_px").to_pylist()
    assert math.isnan(vals[0]) and vals[1] == math.inf and vals[2] == -math.inf
    # NaN is a value, not a null
    assert out.column("tail_capture").null_count == 0


def test_run_id_filled_and_matching_run_id_accepted():
    out = conform(trades_pylist(2), TRADES, RID)
    assert out.column("run_id").to_pylist() == [RID, RID]
    same = [{"run_id": RID, **r} for r in trades_pylist(2)]
    assert conform(same, TRADES, RID).column("run_id").to_pylist() == [RID, RID]


def test_different_run_id_rejected():
    data = [{"run_id": RID, **r} for r in trades_pylist(3)]
    data[1]["run_id"] = OTHER
    with pytest.raises(SchemaMismatchError) as err:
        conform(data, TRADES, RID)
    msg = str(err.value)
    assert OTHER in msg and "row 1" in msg and RID in msg


def test_unknown_column_rejected_for_trades():
    rs = trades_pylist(2)
    rs[0]["surprise"] = 1
    with pytest.raises(SchemaMismatchError, match="unknown column surprise"):
        conform(rs, TRADES, RID)
    with pytest.raises(SchemaMismatchError, match="unknown column surprise"):
        conform(pd.DataFrame(trades_pylist(2)).assign(surprise=1), TRADES, RID)


@pytest.mark.parametrize("kind", ["paths", "summary", "frontier", "errors"])
def test_unknown_column_rejected_for_strict_types(kind):
    rs = rows(kind, 1)
    rs[0]["extra_col"] = "x"
    with pytest.raises(SchemaMismatchError, match="unknown column extra_col"):
        conform(rs, spec(kind), RID)


def test_extra_columns_kept_for_alerts_after_schema_columns():
    df = pd.DataFrame(rows("alerts", 2)).assign(score=[0.5, 0.7], tag=pd.Categorical(["a", "b"]))
    out = conform(df, spec("alerts"), RID)
    assert out.column_names == [*spec("alerts").schema.names, "score", "tag"]
    assert out.column("score").to_pylist() == [0.5, 0.7]
    assert out.column("tag").type == pa.string()
    assert "run_id" not in out.column_names  # alerts keep the input's own columns


def test_extra_columns_kept_for_features_and_builtins_typed():
    rs = rows("features", 2)
    rs[0]["my_feature"] = 1.25
    rs[1]["my_feature"] = None
    out = conform(rs, spec("features"), RID)
    assert out.column("my_feature").to_pylist() == [1.25, None]
    for f in BUILTIN_FEATURES:
        assert out.schema.field(f.name).type == f.type
    bad = rows("features", 1, caller_prior_calls="three")
    with pytest.raises(SchemaMismatchError, match="caller_prior_calls"):
        conform(bad, spec("features"), RID)
    # a features frame with only call_id is fine; builtins are optional
    assert conform([{"call_id": "c"}], spec("features"), RID).column_names == ["run_id", "call_id"]


def test_extra_column_with_mixed_types_rejected():
    rs = rows("alerts", 2)
    rs[0]["mixed"] = 1
    rs[1]["mixed"] = "one"
    with pytest.raises(SchemaMismatchError, match="mixed"):
        conform(rs, spec("alerts"), RID)


def test_timestamps_in_ts_ms_columns_become_epoch_ms():
    ts = [datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, 0, 0, 1, 500000,
                                                                 tzinfo=timezone.utc)]
    expected = [1704067200000, 1704067201500]
    df = pd.DataFrame(rows("trades", 2)).assign(entry_ts_ms=pd.to_datetime(ts, utc=True))
    assert conform(df, TRADES, RID).column("entry_ts_ms").to_pylist() == expected
    df = pd.DataFrame(rows("trades", 2)).assign(entry_ts_ms=pd.to_datetime(ts).tz_localize(None)
                                                 if pd.to_datetime(ts).tz else pd.to_datetime(ts))
    assert conform(df, TRADES, RID).column("entry_ts_ms").to_pylist() == expected
    t = pa.Table.from_pylist(rows("paths", 2))
    i = t.column_names.index("t_2x_ms")
    t = t.set_column(i, "t_2x_ms", pa.array([ts[0], None], pa.timestamp("us", tz="UTC")))
    out = conform(t, spec("paths"), RID)
    assert out.column("t_2x_ms").to_pylist() == [expected[0], None]
    assert out.schema.field("t_2x_ms").type == pa.int64()
    pdf = pl.DataFrame(rows("trades", 2)).with_columns(pl.Series("exit_ts_ms", ts))
    assert conform(pdf, TRADES, RID).column("exit_ts_ms").to_pylist() == expected


def test_timestamp_in_a_non_ms_column_is_rejected():
    df = pd.DataFrame(rows("alerts", 1)).assign(
        created_at=pd.to_datetime(["2024-01-01T00:00:00Z"]))
    with pytest.raises(SchemaMismatchError, match="created_at"):
        conform(df, spec("alerts"), RID)


def test_unsupported_input_types():
    for bad in ("a string", b"bytes", 42, object()):
        with pytest.raises(SchemaMismatchError, match="unsupported data"):
            conform(bad, TRADES, RID)
    with pytest.raises(SchemaMismatchError, match="rows must be dicts"):
        conform([1, 2], TRADES, RID)
    with pytest.raises(SchemaMismatchError, match="differ in length"):
        conform({"call_id": ["a", "b"], "policy_id": ["p"]}, TRADES, RID)


def test_duplicate_column_names_rejected():
    t = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["call_id", "call_id"])
    with pytest.raises(SchemaMismatchError, match="duplicate"):
        conform(t, TRADES, RID)


def test_unknown_artifact_type_parse():
    with pytest.raises(UnknownArtifactTypeError) as err:
        ArtifactType.parse("candles")
    assert "candles" in str(err.value) and "trades" in str(err.value)


@pytest.mark.parametrize("kind", [t.value for t in ArtifactType])
def test_factory_rows_conform(kind):
    out = conform(rows(kind, 3), spec(kind), RID)
    assert out.num_rows == 3
    check_exact(out, kind)
    assert kind in ROW_FACTORIES


def test_list_of_dicts_later_rows_may_bring_columns():
    """Columns are the union of the rows' keys: a key only in a later row is not dropped."""
    rs = rows("alerts", 3)
    rs[2]["score"] = 0.9
    out = conform(rs, spec("alerts"), RID)
    assert out.column("score").to_pylist() == [None, None, 0.9]
    rs = trades_pylist(3)
    rs[2]["surprise"] = 1
    with pytest.raises(SchemaMismatchError, match="unknown column surprise"):
        conform(rs, TRADES, RID)
    rs = trades_pylist(2)
    del rs[0]["tail_capture"]
    assert conform(rs, TRADES, RID).column("tail_capture").to_pylist() == [None, 0.5]


def test_numpy_scalars_in_rows():
    rs = trades_pylist(2)
    rs[0]["entry_ts_ms"] = np.int64(5)
    rs[1]["entry_px"] = np.float64(2.5)
    out = conform(rs, TRADES, RID)
    assert out.column("entry_ts_ms").to_pylist()[0] == 5
    rs[1]["exit_ts_ms"] = np.float64(7.5)
    with pytest.raises(SchemaMismatchError, match=r"exit_ts_ms.*row 1"):
        conform(rs, TRADES, RID)


def test_row_that_is_not_a_dict_is_named():
    rs = [*trades_pylist(2), ["not", "a", "dict"]]
    with pytest.raises(SchemaMismatchError, match="row 2"):
        conform(rs, TRADES, RID)


def test_list_of_dicts_same_key_count_different_keys():
    """Rows with as many keys as the first but different ones: nothing is silently dropped."""
    rs = trades_pylist(2)
    del rs[1]["tail_capture"]
    rs[1]["surprise"] = 1  # same number of keys as row 0
    with pytest.raises(SchemaMismatchError, match="unknown column surprise"):
        conform(rs, TRADES, RID)
    al = rows("alerts", 2)
    al[0]["score"] = 1.0
    al[1]["rank"] = 2  # alerts keep both extras
    out = conform(al, spec("alerts"), RID)
    assert out.column("score").to_pylist() == [1.0, None]
    assert out.column("rank").to_pylist() == [None, 2]


def test_extra_columns_keep_input_order_whatever_their_type():
    rs = [{**r, "z_int": 1, "a_str": "s", "m_float": 0.5} for r in rows("alerts", 2)]
    out = conform(rs, spec("alerts"), RID)
    assert out.column_names[-3:] == ["z_int", "a_str", "m_float"]
    fs = rows("features", 1)
    out = conform(fs, spec("features"), RID)
    assert out.column_names == ["run_id", "call_id", "vol_pre_alert", "volume_spike",
                                "caller_prior_calls", "caller_prior_hit_2x_rate"]
