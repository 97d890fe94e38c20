"""The optimizer's settings: default and help text of each, in one place.

:class:`~quantbot.backtest.optimize.objective.OptimizerConfig` (the validated model) takes
its defaults and field descriptions from :data:`OPTIMIZER_SETTINGS`, and the CLI builds the
``optimize`` / ``run full`` options from it. This module imports nothing heavy (no pydantic,
no numpy), so building the CLI stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Setting:
    default: Any
    help: str
    unit: str | None = None  # "duration": an int of ms, written as text (48h) on the CLI


#: Names of the objectives (formulas: quantbot.backtest.optimize.objective.OBJECTIVES).
OBJECTIVE_NAMES = ("robust", "original", "median", "sharpe")

OPTIMIZER_SETTINGS: dict[str, Setting] = {
    "objective": Setting("robust", "Objective the policies are ranked on: "
                                   + ", ".join(OBJECTIVE_NAMES) + " (formulas: "
                                   "docs/optimizer.md)."),
    "trim_fraction": Setting(0.1, "robust: share of trades trimmed from EACH end of the "
                                  "returns before averaging.", "fraction"),
    "stop_out_weight": Setting(100.0, "robust: penalty in bps per unit of stop_out_rate "
                                      "(100 = 1 bps per percentage point).", "bps"),
    "max_stop_out_rate": Setting(0.30, "Constraint: stop_out_rate <= this.", "fraction"),
    "min_p95_drawdown_bps": Setting(-3000.0, "Constraint: p95_drawdown_bps >= this.", "bps"),
    "max_avg_time_exposed_ms": Setting(48 * HOUR_MS, "Constraint: avg_time_exposed <= this.",
                                       "duration"),
    "return_weight": Setting(1.0, "Objective weight of median_return_bps."),
    "tail_capture_weight": Setting(200.0, "Objective weight of avg_tail_capture."),
    "mae_weight": Setting(0.01, "Objective penalty per bps of |median MAE|."),
    "min_calls": Setting(10, "Callers with fewer eligible training calls are skipped."),
    "validation": Setting(None, "Out-of-sample split: time[:F], caller[:F[:SEED]] or "
                                "random:SEED[:F] (F = training fraction, default 0.8)."),
    "overfit_min_gap": Setting(100.0, "Overfit when the validation score is more than "
                                      "max(this, rel-gap x |train score|) below the train "
                                      "score (and the validation rank is low; see "
                                      "--overfit-top-fraction).", "score points"),
    "overfit_rel_gap": Setting(0.5, "See --overfit-min-gap.", "fraction"),
    "overfit_top_fraction": Setting(0.25, "Overfit also needs the policy's validation rank "
                                          "to be outside the top ceil(this x policies).",
                                    "fraction"),
    "tail_min_peak_bps": Setting(100.0, "tail_capture is null when the window's best move "
                                        "is below this (bps of entry).", "bps"),
}

__all__ = ["HOUR_MS", "OBJECTIVE_NAMES", "OPTIMIZER_SETTINGS", "Setting"]
