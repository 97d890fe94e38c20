"""The distributed optimizer: on a real LocalCluster of 2 worker processes (the session's
``dask_executor``), the frontier — and every other artifact of the run — equals the local
run's exactly (Arrow ``equals``, floats bit for bit), with the default grid, with a
validation split and per-caller groups, through a ``distributed.Client``; the CLI's
``--executor dask-local:2`` end to end; chunk sizing; a bad ``--executor`` value."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from qbtest import assert_clean_error, run_main

from quantbot.artifacts import read_manifest
from quantbot.backtest.data.sample import write_sample_data
from quantbot.backtest.flows.optimization import run_optimization
from quantbot.backtest.optimize.distributed import MIN_CHUNKS_PER_WORKER, chunk_policies

RUN_ID = "00000000-0000-4000-8000-000000000001"
ARTIFACTS = {"frontier": "results/frontier.parquet", "trades": "policy/trades.parquet",
             "summary": "results/summary.parquet", "equity": "results/equity.parquet"}


#: 200 policies (more than the two probe batches of 64: chunks go to the workers)
GRID = {"families": {
    "trail": {"kind": "trailing_stop", "product": {
        "activation_pct": [0.1, 0.2, 0.3, 0.5], "trail_pct": [0.02, 0.05, 0.1, 0.2, 0.3],
        "hard_stop_pct": [0.1, 0.2, 0.3, 0.5]}},  # 80
    "trail_time": {"combo": ["trail", {"kind": "time_stop", "product": {
        "max_hold_ms": ["30bars", "240bars", "2880bars"]}}]},  # 240, some merge
}}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("sample"), n_alerts=120)


def _tables(run_dir: str) -> dict[str, pa.Table]:
    return {name: pq.read_table(f"{run_dir}/{path}") for name, path in ARTIFACTS.items()}


def assert_identical(a: pa.Table, b: pa.Table) -> None:
    """Same schema, same rows; every float column bit for bit (NaN included)."""
    assert a.schema == b.schema and a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        if pa.types.is_floating(x.type):
            assert x.is_null().equals(y.is_null()), name
            bits = [np.asarray(c.fill_null(0.0)).view(np.int64) for c in (x, y)]
            assert np.array_equal(*bits), name
        else:
            assert x.equals(y), name
    if a.equals(a):  # Arrow's equals treats NaN as unequal to itself
        assert a.equals(b)


def _run(sample, base_dir, executor=None, **kw):
    """One run; the same run id each time (it is in the artifacts), in another base dir."""
    return run_optimization(*sample, base_dir=base_dir, durable=False, executor=executor,
                            run_id=RUN_ID, **kw)


@pytest.mark.parametrize("kw", [
    {},
    {"grid": GRID, "config": {"validation": "time:0.7", "min_calls": 5}},
], ids=["default-grid", "validation-per-caller"])
def test_distributed_run_equals_local_run(sample, tmp_path, dask_executor, kw):
    local = _run(sample, tmp_path / "local", **kw)
    dist = _run(sample, tmp_path / "dask", dask_executor, **kw)
    a, b = _tables(local.run_dir), _tables(dist.run_dir)
    for name in ARTIFACTS:
        assert_identical(a[name], b[name])
    groups = set(a["frontier"].column("caller_name").to_pylist())
    assert "*" in groups and len(groups) > 2  # pooled and per-caller groups
    timing = read_manifest(dist.run_dir).timing.model_dump()
    assert timing["optimizer_workers"] == 2 and timing["optimizer_chunks"] >= 2
    assert timing["optimizer_chunk_policies"] % 64 == 0 and timing["optimizer_policy_ms"] > 0
    assert read_manifest(local.run_dir).timing.model_dump()["optimizer_chunks"] == 1
    assert local.metrics == dist.metrics


def test_a_distributed_client_is_accepted_and_left_open(sample, tmp_path, dask_executor):
    client = dask_executor.client
    local = _run(sample, tmp_path / "local", grid=GRID, config={"objective": "sharpe"},
                 per_caller=False)
    dist = _run(sample, tmp_path / "dask", client, grid=GRID, config={"objective": "sharpe"},
                per_caller=False)
    assert_identical(_tables(local.run_dir)["frontier"], _tables(dist.run_dir)["frontier"])
    assert client.status == "running"


def test_cli_optimize_on_a_local_cluster(sample, tmp_path):
    alerts, candles = sample
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(GRID))
    args = ("backtest", "optimize", "--alerts", str(alerts), "--candles", str(candles),
            "--grid", str(grid), "--no-durable", "--format", "json", "--base-dir")
    local = run_main(*args, str(tmp_path / "local"), cwd=tmp_path)
    dist = run_main(*args, str(tmp_path / "dask"), "--executor", "dask-local:2", cwd=tmp_path)
    assert local.returncode == 0 and dist.returncode == 0, dist.stderr
    assert "executor   dask tcp://127.0.0.1:" in dist.stderr and "(2 workers" in dist.stderr
    a, b = (_tables(json.loads(r.stdout)["run_dir"]) for r in (local, dist))
    for name in ARTIFACTS:  # each run's own id aside
        keep = [c for c in a[name].column_names if c != "run_id"]
        assert_identical(a[name].select(keep), b[name].select(keep))


@pytest.mark.parametrize("value", ["dask-local:0", "spark://x:1", "dask://nohost"])
def test_cli_bad_executor_is_one_line(sample, tmp_path, value):
    alerts, candles = sample
    res = run_main("backtest", "optimize", "--alerts", str(alerts), "--candles", str(candles),
                   "--base-dir", str(tmp_path), "--executor", value, cwd=tmp_path)
    assert_clean_error(res, contains=f"--executor {value!r}")
    assert not any(tmp_path.iterdir())  # refused before any run exists


def test_chunk_size_from_the_measured_cost():
    # ~1 s of work per chunk, whole batches of 64
    assert chunk_policies(0.0025, 100_000, 2, 64) == 384
    # at least MIN_CHUNKS_PER_WORKER chunks per worker
    assert chunk_policies(0.0001, 10_000, 2, 64) == 10_000 // (MIN_CHUNKS_PER_WORKER * 2) // 64 * 64
    # the nearest whole number of batches: 1 s / 8.3 ms = 120 policies -> 2 batches
    assert chunk_policies(0.0083, 100_000, 2, 64) == 128
    # never less than one batch
    assert chunk_policies(10.0, 100, 8, 64) == 64
