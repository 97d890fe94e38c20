"""Real runs for the run/compare/callers page tests (import ``demo`` into a test module; a
module, not conftest.py, so it sits beside the other ui tests' conftest): sample data (one caller renamed to a ``<script>`` tag, to
prove escaping), a path-only run, two policy runs, a full run with a validation split,
cataloged. Built once per test process (session scope)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

#: A caller name that would run as script if any page failed to escape it.
EVIL_CALLER = "<script>alert('x')</script>"
SMALL_GRID = {"families": {
    "fixed_stop": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.3],
                                                     "take_profit_pct": [0.5, 2.0]}},
    "time_stop": {"kind": "time_stop", "product": {"max_hold_ms": ["30m", "4h"]}},
}}
POLICY_A = {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0}
POLICY_B = {"kind": "fixed_stop", "stop_pct": 0.3, "take_profit_pct": 1.0}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from quantbot.artifacts import catalog_all_runs
    from quantbot.backtest import run_path_only, run_policy_backtest
    from quantbot.backtest.data.sample import write_sample_data
    from quantbot.backtest.flows.optimization import run_full

    root = tmp_path_factory.mktemp("ui")
    alerts, candles = write_sample_data(root / "data", n_alerts=100)
    table = pq.read_table(alerts)
    first = table.column("caller_name")[0].as_py()
    names = [EVIL_CALLER if c == first else c for c in table.column("caller_name").to_pylist()]
    table = table.set_column(table.schema.get_field_index("caller_name"), "caller_name",
                             pa.array(names))
    pq.write_table(table, alerts)
    base, catalog = root / "runs", root / "catalog.duckdb"
    opts = {"base_dir": base, "durable": False}
    ids = {"paths": run_path_only(alerts, candles, **opts).run_id,
           "a": run_policy_backtest(alerts, candles, POLICY_A, **opts).run_id,
           "b": run_policy_backtest(alerts, candles, POLICY_B, **opts).run_id,
           "full": run_full(alerts, candles, grid=SMALL_GRID, config={"validation": "time:0.8",
                                                                     "min_calls": 3},
                            **opts).run_id}
    catalog_all_runs(catalog=catalog, base_dir=base)
    return {"root": root, "base": base, "catalog": catalog, "ids": ids, "alerts": alerts,
            "candles": candles}


def run_folder(base: Path, run_id: str) -> Path:
    return next(base.glob(f"*/run_id={run_id}"))


def make_app(base: Path, catalog: Path) -> Any:
    """The app over ``base`` and ``catalog``."""
    from quantbot.ui.app import create_app

    return create_app(base, catalog)
