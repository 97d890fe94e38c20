"""Four processes annotating the same runs at once lose no record: each record is its own
object, nothing is ever read, modified and written back."""

from __future__ import annotations

import subprocess
import sys

import duckdb
from qbtest import make_run

from quantbot.artifacts import catalog_all_runs, run_annotations_state
from quantbot.artifacts.store.annotations import fold_records, read_records
from quantbot.artifacts.store.backends import open_storage

_WORKER = """
import sys
from quantbot.artifacts import tag_runs
base, db, me, *runs = sys.argv[1:]
for i in range(4):
    tag_runs(runs, {f"w{me}": str(i), f"w{me}-{i}": "x", "shared": f"{me}-{i}"},
             base_dir=base, catalog=db, author=f"worker{me}", lock_timeout=30)
"""


def test_four_processes_tagging_the_same_runs_lose_no_record(base_dir, catalog):
    ids = [make_run(base_dir).run_id for _ in range(3)]
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(base_dir), str(catalog),
                               str(w), *ids], stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    records, invalid = read_records(open_storage(base_dir))
    assert invalid == []
    assert len(records) == 4 * 4 * 3 * 3  # workers x calls x runs x tags
    assert len({r.record_id for r in records}) == len(records)
    for w in range(4):  # each worker's own records keep its order
        mine = [r for r in records if r.author == f"worker{w}" and r.key == f"w{w}"]
        assert [r.value for r in mine if r.run_id == ids[0]] == ["0", "1", "2", "3"]
    expected = fold_records(records)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)  # picks up any the lock turned away
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM run_annotations").fetchall() == [(len(records),)]
    finally:
        con.close()
    for run_id in ids:
        tags = run_annotations_state(catalog, run_id)["tags"]
        assert tags == expected[run_id].tags
        assert {f"w{w}": "3" for w in range(4)}.items() <= tags.items()
        assert len(tags) == 4 + 16 + 1
