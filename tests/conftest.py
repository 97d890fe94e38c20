"""Shared fixtures for the storage-core tests (artifacts, catalog, CLI).

Helpers that tests import live in tests/helpers/qbtest.py; child-process scripts live
next to it. Everything works on real files under tmp_path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HELPERS = Path(__file__).parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))


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
