"""Fixtures shared by the executor and distributed-optimizer tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dask_executor() -> Iterator[Any]:
    """One LocalCluster of 2 worker processes per test process (startup takes ~5 s)."""
    from quantbot.backtest.executors import open_executor

    with open_executor("dask-local:2") as ex:
        yield ex
