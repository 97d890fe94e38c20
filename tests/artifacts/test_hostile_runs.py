"""Hostile run trees: each bad run becomes "invalid: <path>: <reason>" (naming the file) in
sync, a problem in verify, is skipped by gc, never stops the watcher, and never hangs.

Everything runs in a child process with a bounded wait, so a regression to a blocking read
fails the test instead of hanging the suite; memory cases run under RLIMIT_AS.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from qbtest import make_run

_CHILD = """
import json, sys
from quantbot.artifacts import catalog_all_runs
from quantbot.artifacts.ops.gc import collect_stale_runs
from quantbot.artifacts.ops.verify import verify_runs
base, db = sys.argv[1], sys.argv[2]
sync = catalog_all_runs(catalog=db, base_dir=base)
verify = verify_runs(base)
stale = collect_stale_runs(base, "0s")
print(json.dumps({"sync": sync.to_dict(), "verify": verify.to_dict(),
                  "gc": [s.path for s in stale]}))
"""


def run_child(base: Path, db: Path, limit_as: int | None = None) -> dict:
    """sync + verify + gc in a fresh interpreter; fails (not hangs) after 120 s."""
    code = _CHILD
    if limit_as is not None:
        code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit_as}, {limit_as}))\n"
                + code)
    # few malloc arenas: each thread's 64 MB arena reservation would count against RLIMIT_AS
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MALLOC_ARENA_MAX": "2"}
    proc = subprocess.run([sys.executable, "-c", code, str(base), str(db)], check=False,
                          capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _rewrite_manifest(run_dir: Path, **changes: object) -> None:
    path = run_dir / "run.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def _replace_artifact(run_dir: Path, name: str, data: bytes, rows: int) -> None:
    """Put ``data`` as artifact ``name`` with a manifest entry that matches it exactly."""
    manifest = json.loads((run_dir / "run.json").read_text())
    entry = manifest["artifacts"][name]
    (run_dir / entry["path"]).write_bytes(data)
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), rows=rows)
    (run_dir / "run.json").write_text(json.dumps(manifest))


def _parquet(table, name: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata({"artifact_type": name}), sink)
    return sink.getvalue().to_pybytes()


# Each sabotage gets a completed run's folder and returns (culprit file, words of the reason).
def nested_json(d: Path) -> tuple[str, str]:
    raw = (d / "run.json").read_text()
    (d / "run.json").write_text(raw[:-2] + ', "parameters": {"x": ' + "[" * 200_000
                                + "]" * 200_000 + "}}")
    return "run.json", "JSON depth"


def year_one_with_offset(d: Path) -> tuple[str, str]:
    _rewrite_manifest(d, created_at="0001-01-01T00:00:00+01:00")
    return "run.json", "out of range"


def year_9999_with_offset(d: Path) -> tuple[str, str]:
    _rewrite_manifest(d, completed_at="9999-12-31T23:59:59-01:00")
    return "run.json", "out of range"


def manifest_is_a_folder(d: Path) -> tuple[str, str]:
    (d / "run.json").unlink()
    (d / "run.json").mkdir()
    return "run.json", "a folder"


def artifact_is_a_folder(d: Path) -> tuple[str, str]:
    (d / "policy" / "trades.parquet").unlink()
    (d / "policy" / "trades.parquet").mkdir()
    return "trades.parquet", "not a regular file"


def manifest_is_a_fifo(d: Path) -> tuple[str, str]:
    (d / "run.json").unlink()
    os.mkfifo(d / "run.json")
    return "run.json", "FIFO"


def artifact_is_a_fifo(d: Path) -> tuple[str, str]:
    (d / "policy" / "trades.parquet").unlink()
    os.mkfifo(d / "policy" / "trades.parquet")
    return "trades.parquet", "FIFO"


def artifact_links_to_dev_zero(d: Path) -> tuple[str, str]:
    (d / "policy" / "trades.parquet").unlink()
    os.symlink("/dev/zero", d / "policy" / "trades.parquet")
    return "trades.parquet", "symbolic link"


def artifact_links_outside(d: Path) -> tuple[str, str]:
    # the same bytes outside the run: sha256 and footer check out, the link must not
    target = d.parent.parent.parent / "outside.parquet"
    os.replace(d / "policy" / "trades.parquet", target)
    os.symlink(target, d / "policy" / "trades.parquet")
    return "trades.parquet", "symbolic link"


def run_folder_is_a_link(d: Path) -> tuple[str, str]:
    target = d.parent.parent.parent / "elsewhere"
    os.replace(d, target)
    os.symlink(target, d)
    return d.name, "symbolic link"


def too_many_columns(d: Path) -> tuple[str, str]:
    import pyarrow as pa

    from quantbot.artifacts.store.reader import MAX_ARTIFACT_COLUMNS

    n = MAX_ARTIFACT_COLUMNS + 1
    table = pa.table({f"c{i}": pa.array([1.0] * 2) for i in range(n)})
    _replace_artifact(d, "trades", _parquet(table, "trades"), 2)
    return "trades.parquet", f"columns {n} > {MAX_ARTIFACT_COLUMNS}"


def decoding_bomb(d: Path) -> tuple[str, str]:
    import numpy as np
    import pyarrow as pa

    rows = 2_000_000  # one 1 KB string, 2M times: ~250 KB on disk, 2 GB decoded
    col = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), pa.array(["x" * 1024]))
    data = _parquet(pa.table({"call_id": col}), "trades")
    assert len(data) < 1_000_000
    _replace_artifact(d, "trades", data, rows)
    return "trades.parquet", "decoded bytes"


def huge_manifest(d: Path) -> tuple[str, str]:
    raw = (d / "run.json").read_text()
    (d / "run.json").write_text(raw + " " * (17 * 1024 * 1024))
    return "run.json", "bytes"


def corrupt_run_id_pages(d: Path) -> tuple[str, str]:
    import pyarrow.parquet as pq

    path = d / "policy" / "trades.parquet"
    data = bytearray(path.read_bytes())
    col = pq.read_metadata(path).row_group(0).column(0)
    start = col.dictionary_page_offset or col.data_page_offset
    for i in range(start, start + col.total_compressed_size):  # footer intact, pages garbage
        data[i] ^= 0x5A
    _replace_artifact(d, "trades", bytes(data), pq.read_metadata(path).num_rows)
    return "trades", "unreadable Parquet"


SABOTAGE: list[Callable[[Path], tuple[str, str]]] = [
    nested_json, year_one_with_offset, year_9999_with_offset, manifest_is_a_folder,
    artifact_is_a_folder, manifest_is_a_fifo, artifact_is_a_fifo, artifact_links_to_dev_zero,
    artifact_links_outside, run_folder_is_a_link, too_many_columns, decoding_bomb, huge_manifest, corrupt_run_id_pages,
]


@pytest.mark.parametrize("sabotage", SABOTAGE, ids=lambda f: f.__name__)
def test_a_hostile_run_is_reported_and_every_other_run_registers(base_dir: Path, tmp_path: Path,
                                                                  sabotage) -> None:
    good = [make_run(base_dir).run_id for _ in range(2)]
    bad = make_run(base_dir)
    culprit, words = sabotage(Path(bad.path))
    # 2 GiB of address space: a 2 GB decode or a /dev/zero read fails instead of swapping
    out = run_child(base_dir, tmp_path / "cat.duckdb", limit_as=2 * 1024 ** 3)
    sync = out["sync"]
    assert sync["registered"] == len(good), sync
    [invalid] = sync["invalid"]
    assert bad.run_id in invalid["path"] and words in invalid["reason"], invalid
    assert culprit in invalid["path"] + invalid["reason"], invalid
    problems = out["verify"]["problems"]
    assert problems and all(bad.run_id in p["run_id"] for p in problems), problems
    assert any(words in p["problem"] and culprit in p["path"] + p["problem"] for p in problems)
    assert out["gc"] == []


def test_a_stray_file_named_like_a_run_is_reported(base_dir: Path, tmp_path: Path) -> None:
    good = make_run(base_dir)
    stray = Path(good.path).parent / f"run_id={uuid.uuid4()}"
    stray.write_text("not a folder")
    out = run_child(base_dir, tmp_path / "cat.duckdb")
    assert out["sync"]["registered"] == 1
    [invalid] = out["sync"]["invalid"]
    assert invalid["path"] == str(stray) and "not a run folder" in invalid["reason"]
    [problem] = out["verify"]["problems"]
    assert problem["path"] == str(stray) and "not a run folder" in problem["problem"]
    assert out["gc"] == []


def test_a_month_folder_that_is_a_link_is_reported(base_dir: Path, tmp_path: Path) -> None:
    run = make_run(base_dir)
    month = Path(run.path).parent
    os.replace(month, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", month)
    out = run_child(base_dir, tmp_path / "cat.duckdb")
    assert out["sync"]["registered"] == 0
    [invalid] = out["sync"]["invalid"]
    assert "month folder" in invalid["reason"] and "symbolic link" in invalid["reason"]
    [problem] = out["verify"]["problems"]
    assert "symbolic link" in problem["problem"]


def test_forged_run_id_statistics_do_not_pass(base_dir: Path, tmp_path: Path) -> None:
    """Run A's trades carry run B's id, and A's footer statistics claim min == max == A.

    pyarrow cannot write chosen statistics, so the file is written with B's id and the
    footer rewritten: the statistics hold the id as raw bytes and both ids are 36 bytes
    long, so replacing B by A inside the footer (never in the data pages) keeps every
    offset valid.
    """
    import io

    import pyarrow.parquet as pq

    victim = make_run(base_dir)
    forger = make_run(base_dir)
    path = Path(forger.path) / "policy" / "trades.parquet"
    data = path.read_bytes()
    a, b = forger.run_id.encode(), victim.run_id.encode()
    footer_len = int.from_bytes(data[-8:-4], "little")
    body, footer = data[:-8 - footer_len], data[-8 - footer_len:]
    assert a in body and a in footer
    forged = body.replace(a, b) + footer  # rows: B's id; footer statistics: still A's
    stats = pq.read_metadata(io.BytesIO(forged)).row_group(0).column(0).statistics
    assert stats.min == stats.max == forger.run_id
    assert set(pq.read_table(io.BytesIO(forged)).column("run_id").to_pylist()) == {victim.run_id}
    _replace_artifact(Path(forger.path), "trades", forged, pq.read_metadata(path).num_rows)
    out = run_child(base_dir, tmp_path / "cat.duckdb")
    assert out["sync"]["registered"] == 1, out["sync"]
    [invalid] = out["sync"]["invalid"]
    assert forger.run_id in invalid["path"] and victim.run_id in invalid["reason"], invalid
    assert any(victim.run_id in p["problem"] for p in out["verify"]["problems"])
