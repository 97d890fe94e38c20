"""A sweep to ``s3://`` on a moto server, through the command on a local Dask cluster of 2
worker processes: the endpoint reaches the workers only through the task arguments (the
command's environment has no endpoint variable), every run lands in the bucket and is
cataloged with its sweep id."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
from qbtest import QUANTBOT
from sweep_hooks import make_project

from quantbot.artifacts import list_run_directories, read_manifest
from quantbot.artifacts.store.backends import open_storage
from quantbot.backtest.flows.sweep_spec import load_spec


def test_example_sweep_to_s3_on_a_local_cluster(tmp_path: Path, s3_base: str,
                                                s3_endpoint: str) -> None:
    spec = make_project(tmp_path)
    db = tmp_path / "catalog.duckdb"
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "QUANTBOT_S3_ENDPOINT",
                        "QUANTBOT_DEBUG")}
    proc = subprocess.run(
        [QUANTBOT, "--s3-endpoint", s3_endpoint, "backtest", "sweep", str(spec),
         "--base-dir", s3_base, "--executor", "dask-local:2", "--catalog", str(db),
         "--format", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    keys = [t.key for t in load_spec(spec).tasks]
    assert out["executor"].startswith("tcp://127.0.0.1:") and out["failed"] == 0
    assert [t["key"] for t in out["tasks"]] == keys and len(keys) >= 20
    storage = open_storage(s3_base, endpoint_url=s3_endpoint)
    manifests = [read_manifest(open_storage(p, endpoint_url=s3_endpoint))
                 for p in list_run_directories(storage)]
    tasks = [m for m in manifests if m.run_type != "sweep"]
    assert sorted(m.parameters.model_dump()["sweep"]["task"] for m in tasks) == sorted(keys)
    assert {m.status for m in manifests} == {"completed"}
    assert out["catalog"]["registered"] == len(keys) + 1
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT count(*) FROM run_fields WHERE field = "
                           "'params.sweep.sweep_id' AND value_text = ?",
                           [out["sweep_id"]]).fetchall()
    finally:
        con.close()
    assert rows == [(len(keys),)]
