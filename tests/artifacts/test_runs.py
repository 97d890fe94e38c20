"""Reading runs back: read_manifest, is_complete, list/find run directories; provenance."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from qbtest import make_run

from quantbot.artifacts import (
    get_git_provenance,
    is_complete,
    list_run_directories,
    read_manifest,
)
from quantbot.artifacts.store.runs import find_run_directory
from quantbot.errors import InvalidRunIdError, ManifestError, RunNotFoundError


def test_read_manifest_missing_and_corrupt(base_dir):
    run = make_run(base_dir)
    p = Path(run.path, "run.json")
    good = p.read_bytes()
    p.unlink()
    with pytest.raises(ManifestError, match="missing"):
        read_manifest(run.path)
    p.write_text('{"run_id": "')
    with pytest.raises(ManifestError, match="not valid JSON") as err:
        read_manifest(run.path)
    assert str(p) in str(err.value)
    p.write_text('{"run_id": "x", "run_type": "policy", "status": "completed", "created_at": "z"}')
    with pytest.raises(ManifestError, match="run_id"):
        read_manifest(run.path)
    p.write_bytes(good.replace(b'"completed"', b'"finished"'))
    with pytest.raises(ManifestError, match="status"):
        read_manifest(run.path)
    p.write_bytes(good)
    assert read_manifest(run.path).run_id == run.run_id
    with pytest.raises(ManifestError, match="missing"):
        read_manifest(base_dir / "nope")


def test_is_complete(base_dir):
    done = make_run(base_dir)
    running = make_run(base_dir, complete=False)
    failed = make_run(base_dir, fail=True)
    assert is_complete(done.path) and is_complete(Path(done.path))
    assert not is_complete(running.path)
    assert not is_complete(failed.path)
    assert not is_complete(base_dir / "missing")


def test_list_run_directories(base_dir):
    runs = [make_run(base_dir), make_run(base_dir, complete=False), make_run(base_dir, fail=True)]
    # noise that is not a run directory
    (base_dir / "notes.txt").write_text("x")
    (base_dir / "latest").mkdir()
    (base_dir / "2024-01").mkdir()
    (base_dir / "2024-01" / "run_id=../x").mkdir(parents=True)
    (base_dir / "2024-01" / "run_id=not-a-uuid").mkdir()
    (base_dir / "2024-01" / "random").mkdir()
    (base_dir / "2024-01" / "run_id=0f8fad5b-d9cb-469f-a165-70867728950e").mkdir()
    found = list_run_directories(base_dir)
    assert sorted(found) == sorted([r.path for r in runs] + [
        str(base_dir / "2024-01" / "run_id=0f8fad5b-d9cb-469f-a165-70867728950e")])
    assert list_run_directories(base_dir / "missing") == []


def test_find_run_directory(base_dir):
    run = make_run(base_dir)
    assert find_run_directory(base_dir, run.run_id) == run.path
    assert find_run_directory(base_dir, run.run_id.upper()) == run.path
    with pytest.raises(RunNotFoundError):
        find_run_directory(base_dir, "0f8fad5b-d9cb-469f-a165-70867728950e")
    with pytest.raises(InvalidRunIdError):
        find_run_directory(base_dir, "../" + run.run_id)


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _repo(tmp_path, branch: str):
    """A git repository with one commit on ``branch``; returns (path, commit)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", branch)
    (repo / "f.txt").write_text("1")
    _git(repo, "add", "f.txt")
    _git(repo, "commit", "-q", "-m", "first")
    return repo, _git(repo, "rev-parse", "HEAD")


def test_git_provenance_in_a_repo(tmp_path):
    repo, head = _repo(tmp_path, "feature/x")
    prov = get_git_provenance(repo)
    assert (prov.commit, prov.branch, prov.dirty) == (head, "feature/x", False)
    (repo / "f.txt").write_text("2")
    sub = repo / "sub"
    sub.mkdir()
    prov = get_git_provenance(sub)  # a fresh path: not cached
    assert (prov.commit, prov.branch, prov.dirty) == (head, "feature/x", True)
    _git(repo, "checkout", "-q", "--detach")
    (sub / "deeper").mkdir()
    prov = get_git_provenance(sub / "deeper")
    assert prov.commit == head and prov.branch is None


def test_git_provenance_outside_git(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    prov = get_git_provenance(outside)
    assert (prov.commit, prov.branch, prov.dirty) == (None, None, None)


def test_run_records_git_provenance_of_cwd(tmp_path, monkeypatch):
    repo, head = _repo(tmp_path, "main")
    monkeypatch.chdir(repo)
    from quantbot.artifacts import create_run_directory

    with create_run_directory("path-only", base_dir=tmp_path / "runs", durable=False) as run:
        pass
    m = read_manifest(run.path)
    assert (m.git_commit, m.git_branch, m.git_dirty) == (head, "main", False)
