"""RunDirectory: completion protocol, immutability, manifest updates, artifacts, logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from qbtest import make_run, rows, sha256_file, snapshot_tree

from quantbot.artifacts import (
    create_run_directory,
    is_complete,
    read_manifest,
)
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.errors import (
    InvalidArgumentError,
    InvalidRunIdError,
    RunExistsError,
    RunStateError,
    SchemaMismatchError,
    UnknownArtifactTypeError,
)


def new_run(base_dir, **kw):
    kw.setdefault("durable", False)
    kw.setdefault("git", False)
    return create_run_directory(kw.pop("run_type", "policy"), base_dir=base_dir, **kw)


def no_tmp_files(root) -> None:
    leftovers = [p for p in Path(root).rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_context_manager_success(base_dir):
    with new_run(base_dir, parameters={"policy_id": "p"}) as run:
        assert read_manifest(run.path).status == "running"
        assert not is_complete(run.path)
        run.write_artifact("trades", rows("trades", 2))
    m = read_manifest(run.path)
    assert m.status == "completed" and m.completed_at and m.timing.total_ms >= 0
    assert is_complete(run.path)
    assert (Path(run.path) / "_SUCCESS").read_text() == m.completed_at
    assert m.artifacts["trades"].rows == 2
    assert run.status == "completed"
    no_tmp_files(base_dir)


def test_context_manager_failure_records_error_and_reraises(base_dir):
    with pytest.raises(ZeroDivisionError):
        with new_run(base_dir) as run:
            run.write_artifact("trades", rows("trades", 1))
            1 / 0
    m = read_manifest(run.path)
    assert m.status == "failed"
    assert m.error.type == "ZeroDivisionError"
    assert "division by zero" in m.error.message
    assert "ZeroDivisionError" in m.error.traceback and "1 / 0" in m.error.traceback
    assert m.completed_at
    assert not is_complete(run.path)
    assert not (Path(run.path) / "_SUCCESS").exists()
    assert m.artifacts["trades"].rows == 1  # what was written stays listed
    no_tmp_files(base_dir)


def test_failure_with_empty_message_uses_type_name(base_dir):
    with pytest.raises(KeyboardInterrupt):
        with new_run(base_dir) as run:
            raise KeyboardInterrupt
    m = read_manifest(run.path)
    assert m.status == "failed" and m.error.message == "KeyboardInterrupt"


def test_writing_after_completion_is_refused(base_dir):
    run = make_run(base_dir)
    before = snapshot_tree(run.path)
    for action in (lambda: run.write_artifact("summary", []),
                   lambda: run.update_manifest(parameters={"x": 1}),
                   lambda: run.write_log("extra.txt", "x"),
                   lambda: run.mark_success(),
                   lambda: run.mark_failure(RuntimeError("late")),
                   lambda: run.artifact_writer("frontier")):
        with pytest.raises(RunStateError, match="immutable"):
            action()
    assert snapshot_tree(run.path) == before


def test_failed_run_is_immutable_too(base_dir):
    run = make_run(base_dir, fail=True)
    with pytest.raises(RunStateError):
        run.write_artifact("summary", [])
    with pytest.raises(RunStateError):
        run.mark_success()
    assert not is_complete(run.path)


def test_exit_after_explicit_mark_is_a_no_op(base_dir):
    with new_run(base_dir) as run:
        run.mark_failure(RuntimeError("chosen"))
    assert read_manifest(run.path).status == "failed"
    assert not is_complete(run.path)


def test_same_artifact_twice_is_an_error(base_dir):
    run = new_run(base_dir)
    run.write_artifact("trades", rows("trades", 1))
    entry = read_manifest(run.path).artifacts["trades"]
    with pytest.raises(RunStateError, match="already written"):
        run.write_artifact("trades", rows("trades", 5))
    with pytest.raises(RunStateError, match="already written"):
        run.artifact_writer("trades")
    assert read_manifest(run.path).artifacts["trades"] == entry
    # while a writer is open, the type is reserved too
    w = run.artifact_writer("summary")
    with pytest.raises(RunStateError, match="already written"):
        run.write_artifact("summary", [])
    with pytest.raises(RunStateError, match="still open"):
        run.mark_success()
    w.abort()
    run.write_artifact("summary", [])  # an aborted writer frees the type
    run.mark_success()
    no_tmp_files(base_dir)


def test_unknown_artifact_type(base_dir):
    run = new_run(base_dir)
    with pytest.raises(UnknownArtifactTypeError, match="candles"):
        run.write_artifact("candles", [])
    assert read_manifest(run.path).artifacts == {}
    assert sorted(os.listdir(run.path)) == ["run.json"]


def test_bad_data_leaves_no_file_and_run_usable(base_dir):
    run = new_run(base_dir)
    with pytest.raises(SchemaMismatchError):
        run.write_artifact("trades", rows("trades", 2, entry_px="x"))
    assert "trades" not in read_manifest(run.path).artifacts
    assert not (Path(run.path) / "policy" / "trades.parquet").exists()
    no_tmp_files(base_dir)
    run.write_artifact("trades", rows("trades", 2))
    run.mark_success()
    assert read_manifest(run.path).artifacts["trades"].rows == 2


def test_existing_run_id_is_refused(base_dir):
    run = make_run(base_dir)
    before = snapshot_tree(base_dir)
    with pytest.raises(RunExistsError):
        new_run(base_dir, run_id=run.run_id)
    with pytest.raises(RunExistsError):
        new_run(base_dir, run_id=run.run_id.upper())
    # also when the existing run lives in another month partition
    other = base_dir / "1999-01" / "run_id=0f8fad5b-d9cb-469f-a165-70867728950e"
    other.mkdir(parents=True)
    with pytest.raises(RunExistsError):
        new_run(base_dir, run_id="0f8fad5b-d9cb-469f-a165-70867728950e")
    other.rmdir()
    (base_dir / "1999-01").rmdir()
    assert snapshot_tree(base_dir) == before


def test_invalid_run_id_and_type(base_dir):
    with pytest.raises(InvalidRunIdError):
        new_run(base_dir, run_id="../escape")
    with pytest.raises(InvalidArgumentError, match="invalid run type"):
        new_run(base_dir, run_type="backtest")
    assert list(base_dir.iterdir()) == []
    assert not (base_dir.parent / "escape").exists()


def test_given_run_id_is_normalised(base_dir):
    rid = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    run = new_run(base_dir, run_id=rid)
    assert run.run_id == rid.lower()
    assert Path(run.path).name == f"run_id={rid.lower()}"


def test_initial_manifest(base_dir):
    run = new_run(base_dir, parameters={"policy_id": "p", "k": [1]},
                  dataset={"from": "2024-01-01", "interval": "1m", "calls_count": 3})
    m = read_manifest(run.path)
    assert m.status == "running" and m.run_type == "policy"
    assert m.started_at == m.created_at
    assert m.dataset.from_ == "2024-01-01" and m.dataset.calls_count == 3
    assert m.parameters.policy_id == "p" and m.parameters.model_extra == {"k": [1]}
    assert m.host.hostname and m.host.quantbot
    assert m.git_commit is None and m.git_branch is None  # git=False
    datetime.fromisoformat(m.created_at.replace("Z", "+00:00"))


def test_update_manifest_merges_nested_and_refuses_managed(base_dir):
    run = new_run(base_dir, parameters={"a": {"x": 1, "y": 2}, "policy_id": "p"},
                  dataset={"interval": "1m"})
    run.update_manifest({"parameters": {"a": {"y": 3, "z": 4}}}, dataset={"calls_count": 7})
    run.update_manifest(timing={"plan_ms": 1.5})
    m = read_manifest(run.path)
    assert m.parameters.model_extra["a"] == {"x": 1, "y": 3, "z": 4}
    assert m.parameters.policy_id == "p"
    assert m.dataset.interval == "1m" and m.dataset.calls_count == 7
    assert m.timing.plan_ms == 1.5
    assert run.manifest == m
    before = Path(run.path, "run.json").read_bytes()
    for field, value in (("status", "completed"), ("run_id", run.run_id), ("artifacts", {}),
                         ("created_at", "2020-01-01"), ("run_type", "full"),
                         ("schema_version", {"manifest": "9"})):
        with pytest.raises(RunStateError, match=field):
            run.update_manifest({field: value})
        with pytest.raises(RunStateError, match=field):
            run.update_manifest(**{field: value})
    from quantbot.errors import ManifestError
    with pytest.raises(ManifestError, match="calls_count"):
        run.update_manifest(dataset={"calls_count": -5})
    with pytest.raises(ManifestError, match="not_a_field"):
        run.update_manifest(not_a_field=1)
    assert Path(run.path, "run.json").read_bytes() == before
    run.mark_success()
    m = read_manifest(run.path)
    assert m.timing.plan_ms == 1.5 and m.timing.total_ms is not None


def test_update_manifest_returns_copy(base_dir):
    run = new_run(base_dir)
    m = run.update_manifest(git_branch="feature/x")
    m.git_branch = "mutated"
    assert run.manifest.git_branch == "feature/x"
    assert read_manifest(run.path).git_branch == "feature/x"


def test_artifact_writer_incremental_batches(base_dir):
    run = new_run(base_dir)
    with run.artifact_writer("trades") as w:
        w.write(rows("trades", 3))
        w.write(pa.Table.from_pylist(rows("trades", 2)))
        w.write([])  # an empty batch is fine
        w.write(None)
        w.write({k: [v] for k, v in rows("trades", 1)[0].items()})
        assert not (Path(run.path) / "policy" / "trades.parquet").exists()
    assert w.rows == 6
    run.mark_success()
    table = pq.read_table(Path(run.path) / "policy" / "trades.parquet")
    assert table.num_rows == 6 == read_manifest(run.path).artifacts["trades"].rows
    assert table.schema.metadata[b"rows"] == b"6"
    assert table.column("call_id").to_pylist() == ["call-0", "call-1", "call-2", "call-0",
                                                     "call-1", "call-0"]
    assert table.schema.field("run_id").type == pa.string()


def test_artifact_writer_bad_batch_and_exception_abort(base_dir):
    run = new_run(base_dir)
    with pytest.raises(SchemaMismatchError):
        with run.artifact_writer("trades") as w:
            w.write(rows("trades", 2))
            w.write(rows("trades", 2, exit_px=None))
    assert not (Path(run.path) / "policy" / "trades.parquet").exists()
    assert "trades" not in read_manifest(run.path).artifacts
    no_tmp_files(base_dir)
    with run.artifact_writer("alerts") as w:
        w.write(rows("alerts", 1))
        with pytest.raises(RunStateError, match="differ"):
            w.write([{**rows("alerts", 1)[0], "extra": 1}])
        w.write(rows("alerts", 2))
    assert read_manifest(run.path).artifacts["alerts"].rows == 3


def test_artifact_writer_without_batches_writes_empty_file(base_dir):
    run = new_run(base_dir)
    with run.artifact_writer("summary"):
        pass
    t = pq.read_table(Path(run.path) / "results" / "summary.parquet")
    assert t.num_rows == 0 and t.schema.names == ArtifactType.SUMMARY.spec.schema.names


def test_footer_metadata_and_manifest_hashes(base_dir):
    run = new_run(base_dir)
    for kind in ("alerts", "paths", "features", "trades", "summary", "frontier", "errors"):
        run.write_artifact(kind, rows(kind, 4))
    run.mark_success()
    m = read_manifest(run.path)
    assert sorted(m.artifacts) == sorted(["alerts", "paths", "features", "trades", "summary",
                                          "frontier", "errors"])
    for kind, entry in m.artifacts.items():
        f = Path(run.path, *entry.path.split("/"))
        assert entry.bytes == f.stat().st_size
        assert entry.sha256 == sha256_file(f)
        meta = pq.read_metadata(f).metadata
        assert meta[b"artifact_type"] == kind.encode()
        assert meta[b"run_id"] == run.run_id.encode()
        assert meta[b"rows"] == b"4" and entry.rows == 4
        assert meta[b"schema_version"] == b"1.2.0"
        datetime.fromisoformat(meta[b"created_at"].decode().replace("Z", "+00:00"))
    no_tmp_files(base_dir)


def test_large_artifact_hash_matches(base_dir):
    """Files above the inline-hash threshold are hashed by a thread: still exact."""
    import numpy as np

    n = 200_000
    rng = np.random.default_rng(1)
    data = {"policy_id": ["p"] * n, "call_id": [f"c{i}" for i in range(n)],
            "entry_ts_ms": rng.integers(0, 2**40, n), "entry_px": rng.random(n),
            "exit_ts_ms": rng.integers(0, 2**40, n), "exit_px": rng.random(n),
            "exit_reason": ["take_profit"] * n, "realized_return_bps": rng.normal(size=n),
            "stop_out": rng.random(n) > 0.5, "max_adverse_excursion_bps": rng.random(n),
            "time_exposed_ms": rng.integers(0, 10**8, n), "tail_capture": rng.random(n),
            "side": ["long"] * n}
    run = new_run(base_dir, durable=True)
    entry = run.write_artifact("trades", pa.table(data), compression="none")
    run.mark_success()
    f = Path(run.path, "policy", "trades.parquet")
    assert entry.bytes == f.stat().st_size > (1 << 21)
    assert entry.sha256 == sha256_file(f)


def test_durable_false_and_true_give_same_layout(base_dir):
    a = make_run(base_dir)
    with create_run_directory("policy", base_dir=base_dir, git=False) as b:
        b.write_artifact("trades", rows("trades", 3))
        b.write_artifact("errors", [])
    assert b.durable is True and a.durable is False
    files = lambda r: sorted(str(p.relative_to(r.path)) for p in Path(r.path).rglob("*"))
    assert files(a) == files(b)
    assert is_complete(a.path) and is_complete(b.path)


def test_write_log(base_dir):
    run = new_run(base_dir)
    rel = run.write_log("notes.txt", "héllo\n")
    assert rel == "logs/notes.txt"
    assert Path(run.path, "logs", "notes.txt").read_text() == "héllo\n"
    run.write_log("notes.txt", "second")  # replaced atomically
    assert Path(run.path, "logs", "notes.txt").read_text() == "second"
    for bad in ("../escape.txt", "a/b", ".hidden", "", "..\\x"):
        with pytest.raises(RunStateError, match="invalid log name"):
            run.write_log(bad, "x")
    assert not (base_dir / "escape.txt").exists()
    no_tmp_files(base_dir)


def _capture_child(base_dir, echo: bool, fail: bool):
    from qbtest import HELPERS_DIR

    proc = subprocess.run([sys.executable, str(HELPERS_DIR / "capture_child.py"), str(base_dir),
                           "1" if echo else "0", "1" if fail else "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    run_path = proc.stdout.splitlines()[0]
    return proc, run_path


@pytest.mark.parametrize("echo", [False, True])
def test_capture_output_print_and_subprocess(base_dir, echo):
    proc, run_path = _capture_child(base_dir, echo, fail=False)
    out = Path(run_path, "logs", "stdout.txt").read_text()
    err = Path(run_path, "logs", "stderr.txt").read_text()
    for line in ("from print", "from child", "raw fd write"):
        assert line in out
        assert (line in proc.stdout) is echo
    assert "to stderr" in err and "child err" in err
    assert ("to stderr" in proc.stderr) is echo
    assert "after capture" not in out and "after capture" in proc.stdout
    m = read_manifest(run_path)
    assert m.logs.stdout == "logs/stdout.txt" and m.logs.stderr == "logs/stderr.txt"
    assert m.status == "completed"


def test_capture_output_exception_inside_run(base_dir):
    proc, run_path = _capture_child(base_dir, echo=False, fail=True)
    assert "caught" in proc.stdout
    assert "from print" in Path(run_path, "logs", "stdout.txt").read_text()
    m = read_manifest(run_path)
    assert m.status == "failed" and m.error.type == "ValueError"
    assert m.logs.stdout == "logs/stdout.txt"  # a failed run's logs are listed too
    assert not is_complete(run_path)


def test_zero_row_run_completes(base_dir):
    with new_run(base_dir) as run:
        for kind in ("alerts", "trades", "summary", "errors"):
            run.write_artifact(kind, None)
    m = read_manifest(run.path)
    assert m.status == "completed" and all(e.rows == 0 for e in m.artifacts.values())
    assert is_complete(run.path)


def test_run_json_is_readable_json(base_dir):
    run = make_run(base_dir)
    data = json.loads(Path(run.path, "run.json").read_text())
    assert data["run_id"] == run.run_id and data["status"] == "completed"
    assert data["artifacts"]["trades"]["path"] == "policy/trades.parquet"
