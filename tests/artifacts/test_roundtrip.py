"""Property tests: for every artifact schema, rows that fit it survive write → read exactly."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantbot.artifacts import create_run_directory
from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, BUILTIN_FEATURES, ArtifactType
from quantbot.artifacts.schema.timestamps import MAX_TS_MS, MIN_TS_MS, is_timestamp_column

I64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([-(2**63), 2**63 - 1, 0]))
# timestamp columns hold epoch ms of the years 1-9999 (anything else is rejected)
TS_MS = st.one_of(st.integers(MIN_TS_MS, MAX_TS_MS), st.sampled_from([MIN_TS_MS, MAX_TS_MS, 0]))
F64 = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308]))
STR = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
BOOL = st.booleans()


def value_strategy(typ: pa.DataType, name: str = ""):
    if pa.types.is_int64(typ):
        return TS_MS if is_timestamp_column(name) else I64
    if pa.types.is_float64(typ):
        return F64
    if pa.types.is_boolean(typ):
        return BOOL
    return STR


def rows_strategy(kind: str):
    spec = ARTIFACT_SPECS[ArtifactType(kind)]
    fields = [f for f in spec.schema if f.name != "run_id"]
    if kind == "features":
        fields += list(BUILTIN_FEATURES)
    row = st.fixed_dictionaries({
        f.name: (st.one_of(st.none(), value_strategy(f.type, f.name)) if f.nullable
                 else value_strategy(f.type, f.name))
        for f in fields
    })
    return st.lists(row, min_size=0, max_size=20)


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@pytest.fixture(scope="module")
def shared_base(tmp_path_factory):
    return tmp_path_factory.mktemp("roundtrip")


@pytest.mark.parametrize("kind", [t.value for t in ArtifactType])
def test_roundtrip_every_schema(kind, shared_base):
    spec = ARTIFACT_SPECS[ArtifactType(kind)]

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=rows_strategy(kind))
    def check(data):
        run = create_run_directory("full", base_dir=shared_base, durable=False, git=False)
        entry = run.write_artifact(kind, data)
        run.mark_success()
        path = f"{run.path}/{spec.path}"
        table = pq.read_table(path)
        assert entry.rows == table.num_rows == len(data)
        # exact schema: the declared fields, in order, with their types and nullability
        expected_fields = list(spec.schema)
        if kind == "features" and data:  # extras follow, in the input's order
            builtin = {f.name: f for f in BUILTIN_FEATURES}
            expected_fields += [builtin[k] for k in data[0] if k in builtin]
        names = [f.name for f in expected_fields]
        assert table.column_names == names
        for f in expected_fields:
            got = table.schema.field(f.name)
            assert got.type == f.type, (f.name, got.type)
            if f.name != "run_id" and kind != "features":
                assert got.nullable == f.nullable, f.name
        got_rows = table.to_pylist()
        for want, got in zip(data, got_rows):
            if spec.has_run_id:
                assert got["run_id"] == run.run_id
            for key, value in want.items():
                assert same(value, got[key]), (key, value, got[key])

    check()


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(batches=st.lists(rows_strategy("trades"), min_size=1, max_size=4))
def test_roundtrip_incremental_batches(batches, tmp_path_factory):
    base = tmp_path_factory.getbasetemp() / "roundtrip-batches"
    run = create_run_directory("policy", base_dir=base, durable=False, git=False)
    with run.artifact_writer("trades") as w:
        for b in batches:
            w.write(b)
    run.mark_success()
    table = pq.read_table(f"{run.path}/policy/trades.parquet")
    flat = [r for b in batches for r in b]
    assert table.num_rows == len(flat) == w.rows
    assert table.schema.field("run_id").type == pa.string()
    for want, got in zip(flat, table.to_pylist()):
        for key, value in want.items():
            assert same(value, got[key]), (key, value, got[key])
