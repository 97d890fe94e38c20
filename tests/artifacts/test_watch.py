"""catalog-watch: the daemon in a subprocess (CLI), runs written by the test meanwhile."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from qbtest import QUANTBOT, make_run, run_cli

from quantbot.artifacts.catalog import query_runs
from quantbot.errors import CatalogError

_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (registered|invalid|started|stopped)")


class Watcher:
    """A running ``quantbot backtest catalog-watch`` with its stdout collected line by line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, needle: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            assert self.proc.poll() is None, (self.lines, self.proc.stderr.read())  # type: ignore[union-attr]
            time.sleep(0.05)
        raise AssertionError(f"no line with {needle!r} in {self.lines}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=15)
        self._reader.join(timeout=5)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


@contextmanager
def watching(tmp_path: Path, *extra: str) -> Iterator[Watcher]:
    proc = subprocess.Popen(
        [QUANTBOT, "backtest", "catalog-watch", "--base-dir", "runs", "--duckdb", "cat.duckdb",
         "--debounce-ms", "100", *extra],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher = Watcher(proc)
    try:
        watcher.wait_for_line(" started: ")
        yield watcher
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cataloged(db: Path) -> dict[str, str]:
    """run_id -> status; an absent or momentarily locked catalog counts as empty/retry."""
    try:
        return {m.run_id: m.status for m in query_runs(db, limit=None)}
    except CatalogError:
        return {}


def wait_cataloged(db: Path, run_ids: set[str], timeout: float = 15) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _cataloged(db)
        if run_ids <= set(found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"runs {run_ids - set(_cataloged(db))} never cataloged")


def test_watcher_registers_runs_as_they_complete(tmp_path: Path) -> None:
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    early = make_run(base)  # before the watcher starts: the start-up sync takes it
    with watching(tmp_path) as w:
        done = make_run(base)
        failed = make_run(base, fail=True)
        running = make_run(base, complete=False)
        found = wait_cataloged(db, {early.run_id, done.run_id, failed.run_id})
        assert found[done.run_id] == "completed" and found[failed.run_id] == "failed"
        # other processes keep querying while the watcher runs
        q = run_cli("backtest", "catalog-query", "--duckdb", "cat.duckdb", "--format", "json",
                    "--limit", "100", cwd=tmp_path)
        assert q.returncode == 0, q.stderr
        assert '"count": 3' in q.stdout
        s = run_cli("backtest", "sql", "SELECT count(*) AS n FROM all_trades", "--duckdb",
                    "cat.duckdb", "--format", "csv", cwd=tmp_path)
        assert s.returncode == 0 and s.stdout.splitlines()[1] == "9", s
        # an incomplete run is never registered ... until its _SUCCESS appears
        time.sleep(0.5)
        assert running.run_id not in _cataloged(db)
        running.mark_success()
        assert wait_cataloged(db, {running.run_id})[running.run_id] == "completed"
        code, err = w.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err
    for run, status in ((early, "completed"), (done, "completed"), (failed, "failed"),
                        (running, "completed")):
        hits = [ln for ln in w.lines if f"registered {run.run_id} (policy, {status})" in ln]
        assert len(hits) == 1, w.lines  # logged once: registration is idempotent
        assert _LINE.match(hits[0]), hits[0]
    assert " stopped: registered 4 run(s)" in w.lines[-1]
    assert all(_LINE.match(ln) for ln in w.lines), w.lines


def test_watcher_reports_invalid_runs_once_and_stops_on_sigint(tmp_path: Path) -> None:
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    bad = make_run(base)
    trades = Path(bad.path) / "policy" / "trades.parquet"
    trades.write_bytes(trades.read_bytes()[:-1] + b"\0")
    with watching(tmp_path, "--rescan-interval", "0.3") as w:
        w.wait_for_line(f"/run_id={bad.run_id}: artifact trades: sha256")
        good = make_run(base)
        wait_cataloged(db, {good.run_id})
        time.sleep(1.0)  # several rescans: the invalid run is not reported again
        code, err = w.stop(signal.SIGINT)
    assert code == 0, err
    assert len([ln for ln in w.lines if " invalid " in ln]) == 1, w.lines
    assert "sha256" in next(ln for ln in w.lines if " invalid " in ln)
    assert bad.run_id not in _cataloged(db)
    assert re.search(r"stopped: registered 1 run\(s\), 1 invalid, ([2-9]|\d\d+) rescan", w.lines[-1])


def test_rescan_registers_runs_whose_events_were_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no file events at all (as if inotify dropped them), the periodic sync still catches up."""
    import watchfiles

    from quantbot.artifacts.catalog.watch import watch_catalog

    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    stop = threading.Event()

    def deaf_watch(*args: Any, **kwargs: Any) -> Iterator[set[Any]]:
        while not stop.is_set():
            time.sleep(0.05)
            yield set()

    monkeypatch.setattr(watchfiles, "watch", deaf_watch)
    events: list[Any] = []
    thread = threading.Thread(target=watch_catalog, daemon=True, kwargs={
        "catalog": db, "base_dir": base, "stop_event": stop, "rescan_interval": 0.2, "on_event": events.append})
    thread.start()
    run = make_run(base)
    make_run(base, complete=False)
    deadline = time.monotonic() + 10
    while not any(e.kind == "registered" for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    registered = [e for e in events if e.kind == "registered"]
    assert [(e.run_id, e.run_type, e.status) for e in registered] == [
        (run.run_id, "policy", "completed")]
    assert events[-1].kind == "stopped"
    assert set(_cataloged(db)) == {run.run_id}


def test_watch_options_are_validated(tmp_path: Path) -> None:
    proc = run_cli("backtest", "catalog-watch", "--rescan-interval", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "rescan-interval" in proc.stderr
