"""verify, gc, archive and restore with cwd = tmp_path, so the default ``runs`` and
``data/backtest_catalog.duckdb`` land in the test's folder.

Each command runs once through the installed console script (``run_cli``: the entry point and
the exit status of a real process); the rest in-process through ``quantbot.cli.main``.
"""

from __future__ import annotations

import configparser
import json
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from qbtest import assert_clean_error, assert_usage_error, make_run, run_cli, run_main, unavailable


def test_ops_commands_are_listed(tmp_path: Path) -> None:
    proc = run_main("backtest", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for name in ("catalog-watch", "verify", "gc", "archive", "restore"):
        assert name in proc.stdout


def test_verify_cli(base_dir: Path, tmp_path: Path) -> None:
    make_run(base_dir)
    bad = make_run(base_dir)
    ok = run_main("backtest", "verify", "--all", cwd=tmp_path)
    assert ok.returncode == 0 and "2 run(s) checked, no problems" in ok.stdout, ok
    trades = Path(bad.path) / "policy" / "trades.parquet"
    trades.write_bytes(trades.read_bytes()[:-1] + b"\0")

    proc = run_cli("backtest", "verify", "--all", cwd=tmp_path)
    assert proc.returncode == 1, proc
    header, _, row = proc.stdout.splitlines()
    assert header.split() == ["run_id", "path", "problem"]
    assert row.startswith(bad.run_id) and "sha256 does not match" in row
    assert proc.stderr.strip() == "1 problem(s) in 1 of 2 run(s)"

    one = run_main("backtest", "verify", bad.run_id, "--format", "json", cwd=tmp_path)
    assert one.returncode == 1
    report = json.loads(one.stdout)
    assert report["runs_checked"] == 1 and not report["ok"]
    assert report["problems"][0]["path"].endswith("policy/trades.parquet")

    assert_usage_error(run_main("backtest", "verify", cwd=tmp_path), "RUN_ID or --all")
    assert_clean_error(run_main("backtest", "verify", "../etc", cwd=tmp_path), contains="invalid run id")


def test_gc_cli_dry_run_then_apply(base_dir: Path, tmp_path: Path) -> None:
    running = make_run(base_dir, complete=False)
    done = make_run(base_dir)
    manifest = Path(running.path) / "run.json"
    before = manifest.read_bytes()

    dry = run_main("backtest", "gc", "--stale", "0s", cwd=tmp_path)
    assert dry.returncode == 0, dry
    assert running.run_id in dry.stdout and "would mark failed" in dry.stdout
    assert done.run_id not in dry.stdout and "dry run, nothing changed" in dry.stdout
    assert manifest.read_bytes() == before

    applied = run_cli("backtest", "gc", "--stale", "0s", "--apply", "--format", "json", cwd=tmp_path)
    assert applied.returncode == 0, applied
    out = json.loads(applied.stdout)
    assert out["count"] == 1 and out["stale"][0]["marked_failed"] is True
    m = json.loads(manifest.read_text())
    assert m["status"] == "failed" and m["error"]["type"] == "StaleRun"
    assert "no runs stale" in run_main("backtest", "gc", "--stale", "0s", cwd=tmp_path).stdout

    assert_clean_error(run_main("backtest", "gc", "--stale", "soon", cwd=tmp_path), contains="invalid age")


def test_archive_and_restore_cli(base_dir: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("quantbot.artifacts.store.writer.utc_now",
                        lambda: datetime(2024, 1, 20, tzinfo=UTC))
    old = [make_run(base_dir), make_run(base_dir, fail=True)]
    monkeypatch.undo()
    make_run(base_dir)
    assert run_main("backtest", "catalog-sync", cwd=tmp_path).returncode == 0

    def count() -> int:  # the CLI has closed the catalog again
        import duckdb

        con = duckdb.connect(str(tmp_path / "data" / "backtest_catalog.duckdb"), read_only=True)
        try:
            return con.execute("SELECT count(*) FROM backtest_runs_catalog").fetchone()[0]
        finally:
            con.close()

    assert count() == 3
    arch = run_cli("backtest", "archive", "--before", "2024-02", "--format", "json", cwd=tmp_path)
    assert arch.returncode == 0, arch
    [month] = json.loads(arch.stdout)
    assert month["month"] == "2024-01" and month["runs"] == 2 and month["unregistered"] == 2
    archive = tmp_path / "archive" / "runs-2024-01.tar.gz"
    assert (tmp_path / month["path"]).resolve() == archive.resolve() and archive.is_file()
    assert not (base_dir / "2024-01").exists()
    assert count() == 1

    restored = run_cli("backtest", "restore", "archive/runs-2024-01.tar.gz", cwd=tmp_path)
    assert restored.returncode == 0, restored
    assert "restored 2 run(s) of 2024-01" in restored.stdout
    assert "registered 2" in restored.stdout
    assert {p.name for p in (base_dir / "2024-01").iterdir()} == {f"run_id={r.run_id}" for r in old}
    assert count() == 3

    again = run_main("backtest", "restore", "archive/runs-2024-01.tar.gz", cwd=tmp_path)
    assert_clean_error(again, contains="never overwritten")
    assert_clean_error(run_main("backtest", "archive", "--before", "24-01", cwd=tmp_path),
                       contains="invalid month")


# -- scripts/: cron line and systemd units -------------------------------------------------
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
VENV_QUANTBOT = str(Path(sys.executable).parent / "quantbot")
INSTALLED_QUANTBOT = "/opt/quantbot/.venv/bin/quantbot"


def _parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as INI: sections of key -> values (keys may repeat, e.g. Environment)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}:{n}: key outside a section"
        key, sep, value = line.partition("=")
        assert sep and key.strip() and key.strip().isidentifier(), f"{path.name}:{n}: {raw!r}"
        assert not value.endswith("\\"), f"{path.name}:{n}: no continuation lines expected"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _exec_args(command: str) -> list[str]:
    args = shlex.split(command)
    assert args[0] == INSTALLED_QUANTBOT, command
    return args[1:]


@pytest.mark.parametrize("name", ["quantbot-catalog-sync.service", "quantbot-catalog-sync.timer",
                                  "quantbot-catalog-watch.service"])
def test_systemd_units_parse(name: str) -> None:
    # also parses with the stdlib INI reader (strict=False: systemd allows repeated keys)
    ini = configparser.ConfigParser(strict=False, interpolation=None)
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini.read(SCRIPTS / name)
    unit = _parse_unit(SCRIPTS / name)
    assert set(unit) == set(ini.sections())
    assert unit["Unit"]["Description"]
    if name.endswith(".timer"):
        assert unit["Timer"]["Unit"] == ["quantbot-catalog-sync.service"]
        assert unit["Timer"]["Persistent"] == ["true"]
        assert unit["Install"]["WantedBy"] == ["timers.target"]
        return
    service = unit["Service"]
    assert service["User"] == ["quantbot"] and service["WorkingDirectory"] == ["/var/lib/quantbot"]
    if "sync" in name:
        assert service["Type"] == ["oneshot"] and "Install" not in unit  # the timer starts it
        assert _exec_args(service["ExecStart"][0])[:2] == ["backtest", "catalog-sync"]
    else:
        assert service["Type"] == ["simple"] and service["Restart"] == ["on-failure"]
        assert service["KillSignal"] == ["SIGTERM"]
        assert _exec_args(service["ExecStart"][0])[:2] == ["backtest", "catalog-watch"]
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_units_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        unavailable("systemd-analyze not installed (make test installs it)")
    for unit in SCRIPTS.glob("quantbot-*.*"):
        if unit.suffix in (".service", ".timer"):  # ExecStart must exist: point it at this venv
            text = unit.read_text().replace(INSTALLED_QUANTBOT, VENV_QUANTBOT)
            (tmp_path / unit.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    proc = subprocess.run([tool, "verify", "--man=no", *units], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr


def test_unit_and_cron_commands_are_accepted_by_the_cli(tmp_path: Path) -> None:
    cron = [ln for ln in (SCRIPTS / "quantbot-catalog-sync.cron").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    assert len(cron) == 1
    fields = cron[0].split(None, 5)
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for field, (lo, hi) in zip(fields[:5], ranges):
        for part in field.split(","):
            base, _, step = part.partition("/")
            assert step == "" or step.isdigit()
            if base != "*":
                for v in base.split("-"):
                    assert v.isdigit() and lo <= int(v) <= hi, field
    command = fields[5]
    assert "flock -n" in command
    quantbot = command[command.index(INSTALLED_QUANTBOT):].split(">>")[0]
    # the exact command lines, pointed at this test's folder, must parse (and sync must run)

    def local(args: list[str]) -> list[str]:
        return [a.replace("/var/lib/quantbot", str(tmp_path)) for a in args]

    sync = run_main(*local(_exec_args(quantbot)), cwd=tmp_path)
    assert sync.returncode == 0 and "registered: 0" in sync.stdout, sync
    for name in ("quantbot-catalog-sync.service", "quantbot-catalog-watch.service"):
        unit = _parse_unit(SCRIPTS / name)
        args = local(_exec_args(unit["Service"]["ExecStart"][0]))
        proc = run_main(*args, "--help", cwd=tmp_path)
        assert proc.returncode == 0, proc
        env = dict(v.split("=", 1) for v in unit["Service"]["Environment"])
        assert env["QUANTBOT_CATALOG"].endswith("/data/backtest_catalog.duckdb")
