"""One handle per store: configured once, every operation through the same storage."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from qbtest import rows

import quantbot
from quantbot.artifacts import query_runs


def _write(store, run_type="policy"):
    with store.create_run(run_type, parameters={"policy_id": "p1"}, durable=False, git=False) as run:
        run.write_artifact("trades", rows("trades", 4))
    return run


def test_create_sync_query_and_read_through_one_handle(base_dir, catalog):
    store = quantbot.open_store(base_dir, catalog=catalog)
    run = _write(store)
    report = store.sync()
    assert report.registered == 1
    assert [m.run_id for m in store.query(run_type="policy")] == [run.run_id]
    assert [m.run_id for m in query_runs(catalog, run_type="policy")] == [run.run_id]  # the free function agrees
    handle = store.run(run.run_id[:8])
    assert handle.run_id == run.run_id and handle.is_complete
    assert handle.manifest.parameters.model_dump()["policy_id"] == "p1"
    table = handle.read("trades")
    assert isinstance(table, pa.Table) and table.num_rows == 4
    assert pq.read_table(handle.artifact_path("trades")).num_rows == 4
    assert store.sql("SELECT count(*) AS n FROM all_trades").column("n").to_pylist() == [4]
    assert store.verify(run.run_id[:8]).ok
    assert [h.run_id for h in store.runs()] == [run.run_id]
