"""Shared fixtures for the storage-core tests (artifacts, catalog, CLI).

Helpers that tests import live in tests/helpers/qbtest.py; child-process scripts live
next to it. Everything works on real files under tmp_path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HELPERS = Path(__file__).parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))


#: Variables others set: pytest per phase, polars' allocator when it is first imported.
_OWNED_BY_OTHERS = frozenset({"PYTEST_CURRENT_TEST", "_RJEM_MALLOC_CONF"})


@pytest.fixture(autouse=True)
def _no_leaked_process_state() -> Iterator[None]:
    """The CLI runs in-process in many tests (qbtest.run_main): a test that leaves os.environ
    or the working directory changed would steer the tests after it, so it fails here (and
    the state is put back). Use monkeypatch.setenv / monkeypatch.chdir for deliberate changes.
    """
    def env_now() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in _OWNED_BY_OTHERS}

    env, cwd = env_now(), os.getcwd()
    yield
    now_env, now_cwd = env_now(), os.getcwd()
    if now_env == env and now_cwd == cwd:
        return
    changed = sorted(k for k in env.keys() | now_env.keys() if env.get(k) != now_env.get(k))
    for key in changed:
        if key in env:
            os.environ[key] = env[key]
        else:
            del os.environ[key]
    os.chdir(cwd)
    pytest.fail(f"test leaked process state: env {changed}, cwd {now_cwd!r} (was {cwd!r})")


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    """An empty runs/ folder."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """Path of a (not yet created) catalog file."""
    return tmp_path / "data" / "backtest_catalog.duckdb"


# The machine is shared and noisy: hypothesis' per-example deadline would make timing flaky.
from hypothesis import settings  # noqa: E402

settings.register_profile("quantbot", deadline=None)
settings.load_profile("quantbot")
