"""Flows over in-memory inputs: pandas, polars and Arrow frames give the same artifacts,
row for row, as the same data read from files; the manifest says they were in memory."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from quantbot.artifacts import read_manifest
from quantbot.artifacts.ops.diff import compare_artifact
from quantbot.backtest import rerun, run_path_only, run_policy_backtest, write_sample_data
from quantbot.errors import DataError

POLICY = {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("sample"), n_alerts=60)


@pytest.fixture(scope="module")
def file_runs(sample, tmp_path_factory):
    base = tmp_path_factory.mktemp("file_runs")
    return (run_path_only(*sample, base_dir=base, durable=False),
            run_policy_backtest(*sample, POLICY, base_dir=base, durable=False))


def _frames(sample, kind: str):
    tables = [pq.read_table(p) for p in sample]
    if kind == "arrow":
        return tables
    if kind == "pandas":
        return [t.to_pandas() for t in tables]
    polars = pytest.importorskip("polars")
    return [polars.from_arrow(t) for t in tables]


def _same_artifacts(a, b) -> None:
    ma, mb = read_manifest(a.run_dir), read_manifest(b.run_dir)
    assert set(ma.artifacts) == set(mb.artifacts)
    for name in ma.artifacts:
        cmp = compare_artifact(name, a.run_dir, ma, b.run_dir, mb)
        assert cmp.identical, (name, cmp)


@pytest.mark.parametrize("kind", ["arrow", "pandas", "polars"])
def test_in_memory_inputs_match_files(kind, sample, file_runs, tmp_path):
    alerts, candles = _frames(sample, kind)
    path_file, policy_file = file_runs
    path_mem = run_path_only(alerts, candles, base_dir=tmp_path, durable=False)
    policy_mem = run_policy_backtest(alerts, candles, POLICY, base_dir=tmp_path, durable=False)
    assert (path_mem.calls, path_mem.eligible) == (path_file.calls, path_file.eligible)
    _same_artifacts(path_file, path_mem)
    _same_artifacts(policy_file, policy_mem)
    inputs = read_manifest(policy_mem.run_dir).parameters.model_dump()["inputs"]
    file_inputs = read_manifest(policy_file.run_dir).parameters.model_dump()["inputs"]
    for name in ("alerts", "candles"):
        assert inputs[name]["kind"] == "memory" and inputs[name]["path"] is None
        assert inputs[name]["fingerprint"] == file_inputs[name]["fingerprint"]  # by content


def test_rerun_of_an_in_memory_run_says_why_not(sample, tmp_path):
    alerts, candles = _frames(sample, "arrow")
    result = run_path_only(alerts, candles, base_dir=tmp_path, durable=False)
    with pytest.raises(DataError, match="alerts were passed in memory"):
        rerun(result.run_id, base_dir=tmp_path, durable=False)


def test_unsupported_input_type_is_one_line_error(sample, tmp_path):
    with pytest.raises(DataError, match="candles: expected a path, a pandas/polars DataFrame "
                                        "or a pyarrow Table, got builtins.list"):
        run_path_only(sample[0], [1, 2, 3], base_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # rejected before a run directory existed
