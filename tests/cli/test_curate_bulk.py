"""Bulk curation: tag/untag/delete/undelete --filter select runs with the filter language
(``quantbot.artifacts.catalog.listing.list_runs``) and change nothing without --yes."""

from __future__ import annotations

from pathlib import Path

from qbtest import make_run, run_main

from quantbot.artifacts import catalog_all_runs, run_annotations_state


def _setup(tmp_path: Path) -> tuple[list[str], list[str]]:
    ok = [make_run(tmp_path / "runs").run_id for _ in range(3)]
    failed = [make_run(tmp_path / "runs", fail=True).run_id for _ in range(2)]
    catalog_all_runs(catalog=tmp_path / "cat.duckdb", base_dir=tmp_path / "runs")
    return ok, failed


def _qb(tmp_path: Path, *args: str):
    return run_main("backtest", *args, "--base-dir", "runs", "--duckdb", "cat.duckdb",
                    cwd=tmp_path)


def _deleted(tmp_path: Path, ids: list[str]) -> list[bool]:
    db = tmp_path / "cat.duckdb"
    return [run_annotations_state(db, r)["deleted_at"] is not None for r in ids]


def test_bulk_delete_shows_the_count_and_needs_yes(tmp_path):
    ok, failed = _setup(tmp_path)
    asked = _qb(tmp_path, "delete", "--filter", "status = 'failed'")
    assert asked.returncode == 1
    assert asked.stdout.strip() == "2 runs match; rerun with --yes to delete them"
    assert not (tmp_path / "runs" / "_annotations").exists()  # nothing changed
    done = _qb(tmp_path, "delete", "--filter", "status = 'failed'", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "deleted 2 run(s)\n"
    assert _deleted(tmp_path, failed) == [True, True] and _deleted(tmp_path, ok) == [False] * 3
    again = _qb(tmp_path, "delete", "--filter", "status = 'failed'", "--yes")
    assert again.returncode == 0 and again.stdout.startswith("0 runs match")  # hidden now
    back = _qb(tmp_path, "undelete", "--filter", "status = 'failed'", "--yes")
    assert back.stdout == "undeleted 2 run(s)\n" and _deleted(tmp_path, failed) == [False] * 2


def test_bulk_tag_and_untag(tmp_path):
    ok, failed = _setup(tmp_path)
    asked = _qb(tmp_path, "tag", "--filter", "status = 'completed'", "keep=yes")
    assert asked.returncode == 1
    assert asked.stdout.strip() == "3 runs match; rerun with --yes to tag them"
    done = _qb(tmp_path, "tag", "--filter", "status = 'completed'", "keep=yes", "--yes")
    assert done.stdout == "tagged 3 run(s): keep=yes\n", done.stderr
    db = tmp_path / "cat.duckdb"
    assert [run_annotations_state(db, r)["tags"] for r in ok + failed] == \
        [{"keep": "yes"}] * 3 + [{}] * 2
    gone = _qb(tmp_path, "untag", "--filter", "tags.keep = 'yes'", "keep", "--yes")
    assert gone.stdout == "untagged 3 run(s): keep\n", gone.stderr
    assert all(run_annotations_state(db, r)["tags"] == {} for r in ok)
