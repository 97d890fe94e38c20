"""The optimizer's settings: default and help text of each, in one place.

:class:`~quantbot.backtest.optimize.objective.OptimizerConfig` (the validated model) takes
its defaults and field descriptions from :data:`OPTIMIZER_SETTINGS`, and the CLI builds the
``optimize`` / ``run full`` options from it. This module imports nothing heavy (no pydantic,
no numpy), so building the CLI stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantbot.backtest.engine.constants import TRIM_FRACTION

HOUR_MS = 3_600_000
#: The bar assumed when none is given (the original system's 1m candles).
DEFAULT_INTERVAL_MS = 60_000
#: The time-exposure constraint's default, in bars so that it fits every interval: 48 h on
#: the original system's 1m bars; on daily bars a limit of 48 h would rule out every policy
#: that holds past the next bar.
DEFAULT_MAX_EXPOSED = "2880bars"


@dataclass(frozen=True)
class Setting:
    default: Any
    help: str
    unit: str | None = None  # "duration": an int of ms, written as text (48h) on the CLI
    choices: tuple[str, ...] = ()  # the values a text setting may take


#: Each objective's formula; ``{...}`` are optimizer settings, filled by formula_text.
OBJECTIVE_FORMULAS: dict[str, str] = {
    "robust": "objective_score = trimmed_mean(realized_return_bps, {trim_fraction:g} per end)"
              " - {stop_out_weight:g} * stop_out_rate  [trimmed mean: drop max(1, "
              "floor({trim_fraction:g}*n)) trades from each end (at most (n-1)/2), average "
              "the rest; one trade moves the score by at most (k-th largest - k-th smallest"
              " return)/(n-2k) + {stop_out_weight:g}/n for n >= 3]",
    "original": "objective_score = {return_weight:g} * median_return_bps + "
                "{tail_capture_weight:g} * avg_tail_capture - {mae_weight:g} * "
                "|median max_adverse_excursion_bps|  [null avg_tail_capture counts as 0; "
                "the original system's score, kept for comparison]",
    "median": "objective_score = median(realized_return_bps)",
    "sharpe": "objective_score = the policy's portfolio Sharpe ratio over the group's "
              "calls (annualised; the portfolio step's definition)",
}
OBJECTIVE_NAMES = tuple(OBJECTIVE_FORMULAS)


def formula_text(name: str, values: dict[str, Any]) -> str:
    """Objective ``name``'s formula with the setting ``values`` (unknown name: KeyError)."""
    return OBJECTIVE_FORMULAS[name].format(**values)


def _objective_help() -> str:
    defaults = {k: s.default for k, s in OPTIMIZER_SETTINGS.items() if k != "objective"}
    return "Objective the policies are ranked on. " + " ".join(
        f"{name}: {formula_text(name, defaults)}." for name in OBJECTIVE_NAMES)


OPTIMIZER_SETTINGS: dict[str, Setting] = {
    "objective": Setting("robust", ""),  # help below: it quotes the other defaults
    "trim_fraction": Setting(TRIM_FRACTION, "robust: share of trades trimmed from EACH end of the "
                                  "returns before averaging.", "fraction"),
    "stop_out_weight": Setting(100.0, "robust: penalty in bps per unit of stop_out_rate "
                                      "(100 = 1 bps per percentage point).", "bps"),
    "max_stop_out_rate": Setting(0.30, "Constraint: stop_out_rate <= this.", "fraction"),
    "min_p95_drawdown_bps": Setting(-3000.0, "Constraint: p95_drawdown_bps >= this.", "bps"),
    "max_avg_time_exposed_ms": Setting(
        DEFAULT_MAX_EXPOSED, "Constraint: avg_time_exposed <= this: a duration (48h) or bars of "
        "the run's interval (2880bars = 48h on 1m bars, 2880 days on daily bars: like the "
        "default grid's time stops, it follows the data).", "duration"),
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
}

OPTIMIZER_SETTINGS["objective"] = Setting("robust", _objective_help(), choices=OBJECTIVE_NAMES)

__all__ = ["DEFAULT_INTERVAL_MS", "DEFAULT_MAX_EXPOSED", "HOUR_MS", "OBJECTIVE_FORMULAS", "OBJECTIVE_NAMES", "OPTIMIZER_SETTINGS", "Setting",
           "formula_text"]
