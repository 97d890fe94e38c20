"""Annotation records on an s3:// base dir: one object per record, read back, applied to
the catalog, rebuilt from the bucket, and gc --deleted removing a run's objects."""

from __future__ import annotations

from datetime import timedelta

import boto3
from qbtest import rows

import quantbot
from quantbot.artifacts.schema.layout import parse_iso
from quantbot.artifacts.store.annotations import read_records


def _keys(s3_endpoint: str, s3_base: str) -> list[str]:
    bucket, prefix = s3_base[len("s3://"):].split("/", 1)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix) + 1:] for page in pages for o in page.get("Contents", []))


def test_records_round_trip_on_s3_and_survive_a_catalog_rebuild(s3_base, s3_endpoint, tmp_path):
    db = tmp_path / "cat.duckdb"
    store = quantbot.open_store(s3_base, catalog=db, s3_endpoint=s3_endpoint)
    ids = []
    for n in (2, 3):
        with store.create_run("policy", durable=False, git=False) as run:
            run.write_artifact("trades", rows("trades", n))
        ids.append(run.run_id)
    store.sync()
    tagged = store.tag(ids, {"exp": "s3"}, author="ana@box")
    named = store.name(ids[0], "on the bucket")
    store.note(ids[0], "it's literal; DROP TABLE x")
    (deleted,) = store.delete(ids[1])
    keys = [k for k in _keys(s3_endpoint, s3_base) if k.startswith("_annotations/")]
    assert len(keys) == 5 and all(k.endswith(".json") and k.count("/") == 2 for k in keys)
    records, invalid = read_records(store.storage)
    assert invalid == [] and len(records) == 5
    assert {r.record_id for r in [*tagged, named, deleted]} <= {r.record_id for r in records}
    assert [r.action for r in store.history(ids[0])] == ["tag", "name", "note"]

    db.unlink()
    store.sync()
    state = quantbot.artifacts.run_annotations_state(db, ids[0])
    assert state["name"] == "on the bucket" and state["tags"] == {"exp": "s3"}
    assert state["notes"][0]["text"] == "it's literal; DROP TABLE x"
    assert store.sql("SELECT DISTINCT run_id FROM all_trades").column("run_id").to_pylist() \
        == [ids[0]]

    later = parse_iso(deleted.created_at) + timedelta(days=31)
    from quantbot.artifacts.ops.gc import collect_deleted_runs

    (gone,) = collect_deleted_runs(store.storage, "30d", catalog=db, apply=True, now=later)
    assert gone.run_id == ids[1] and gone.path.startswith("s3://")
    left = _keys(s3_endpoint, s3_base)
    assert not any(ids[1] in k for k in left) and any(ids[0] in k for k in left)
    assert [h.run_id for h in store.runs()] == [ids[0]]
    assert store.query() and all(m.run_id == ids[0] for m in store.query())
