"""A very wide features artifact is consolidated in memory linear in its size.

Each ``ALTER TABLE ADD COLUMN`` copies the table's whole column list inside the
transaction; 5,000 of them once took 26 s and 7.0 GB. The sync runs in a child process
under an address-space limit that the quadratic version exceeds many times over.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from qbtest import feature_row, make_run

_COLUMNS = 5_000
_ROWS = 10
_LIMIT_BYTES = 4 << 30  # DuckDB reserves (not touches) a block per column: keep headroom
_MAX_RSS_KB = 1_500_000

_CHILD = """
import json, resource, sys
from quantbot.artifacts import catalog_all_runs
report = catalog_all_runs(catalog=sys.argv[1], base_dir=sys.argv[2])
print(json.dumps({"report": report.to_dict(),
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_LIMIT_BYTES, _LIMIT_BYTES))


def test_five_thousand_feature_columns_sync_within_a_memory_limit(base_dir: Path, catalog: Path):
    base = [feature_row(i) for i in range(_ROWS)]
    cols = {k: pa.array([r[k] for r in base]) for k in base[0]}
    cols.update({f"f{j}": pa.array([float(i * j) for i in range(_ROWS)]) for j in range(_COLUMNS)})
    run = make_run(base_dir, artifacts={"features": pa.table(cols)})
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(catalog), str(base_dir)],
                          capture_output=True, text=True, timeout=300, preexec_fn=_limit,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["report"]["registered"] == 1, out["report"]
    assert out["max_rss_kb"] < _MAX_RSS_KB, out
    import duckdb

    con = duckdb.connect(str(catalog), read_only=True)
    try:
        (n_cols,) = con.execute("SELECT count(*) FROM information_schema.columns "
                                "WHERE table_name = 'all_features'").fetchone()
        got = con.execute('SELECT sum("f4999") FROM all_features WHERE run_id = ?',
                          [run.run_id]).fetchone()
    finally:
        con.close()
    assert n_cols == 1 + len(base[0]) + _COLUMNS  # run_id, the built-in columns, the extras
    assert got == (float(sum(i * 4999 for i in range(_ROWS))),)
