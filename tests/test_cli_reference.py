"""docs/cli.md is the CLI's own ``--help``: regenerated here, it must match byte for byte.

The generator runs in a real subprocess (as a user runs it), so the environment of the test
process and whatever it imported cannot leak into the text.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "cli_reference.py"
CLI_MD = ROOT / "docs" / "cli.md"


def _load_script():
    spec = importlib.util.spec_from_file_location("cli_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generate(extra_env: dict[str, str] | None = None) -> str:
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, cwd=ROOT, capture_output=True,
                          encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_docs_cli_md_matches_the_cli() -> None:
    ref = _load_script()
    generated = _generate()
    committed = CLI_MD.read_text(encoding="utf-8") if CLI_MD.exists() else ""
    assert committed == generated, (
        f"docs/cli.md differs from the CLI's --help:\n{ref.diff(committed, generated)}\n"
        f"regenerate it with: {ref.FIX_COMMAND}")


def test_reference_does_not_depend_on_environment_or_terminal() -> None:
    plain = _generate()
    hostile = _generate({"COLUMNS": "40", "LINES": "10", "QUANTBOT_CATALOG": "/elsewhere.duckdb",
                         "QUANTBOT_BASE_DIR": "s3://bucket/runs", "QUANTBOT_S3_ENDPOINT": "http://x",
                         "AWS_ENDPOINT_URL": "http://y", "LC_ALL": "C", "LANG": "C",
                         "PYTHONIOENCODING": "ascii"})
    assert hostile == plain
    assert "/elsewhere.duckdb" not in plain and "s3://bucket/runs" not in plain


def test_every_command_has_one_heading_with_its_usage() -> None:
    from quantbot.cli import cli

    text = _generate()
    paths: list[str] = []

    def walk(command: click.Command, path: str) -> None:
        paths.append(path)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                if not sub.hidden:
                    walk(sub, f"{path} {name}")

    walk(cli, "quantbot")
    assert len(paths) > 10
    for path in paths:
        assert text.count(f"\n## `{path}`\n") == 1, path
        assert f"Usage: {path} " in text, path
    assert max(len(line) for line in text.splitlines()) <= 100
