"""Artifact types and their explicit Arrow schemas (the contract in SCHEMAS.md).

Schemas are declared, never inferred from the first row: a column's type does not depend
on which run happened to write it first, so every run's files union cleanly in SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.versions import ARTIFACT_SCHEMA_VERSION, MANIFEST_SCHEMA_VERSION

__all__ = ["ARTIFACT_SCHEMA_VERSION", "ARTIFACT_SPECS", "MANIFEST_SCHEMA_VERSION", "ArtifactSpec",
           "ArtifactType"]

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()


def _f(name: str, typ: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


@dataclass(frozen=True)
class ArtifactSpec:
    """Where an artifact lives in a run directory and which columns it must have.

    ``extra_columns`` allows typed columns beyond the schema (alerts keep their extra
    input columns; features are wide and grow by new columns, never a JSON blob).
    ``has_run_id`` is false only for alerts, whose columns are the input's own.
    """

    type: ArtifactType
    schema: pa.Schema
    extra_columns: bool = False
    extra_rules: tuple[tuple[str, pa.DataType], ...] = ()  # (regex, type): only these extras

    def extra_type(self, name: str) -> pa.DataType | None:
        """The type an extra column ``name`` must have under ``extra_rules`` (None: any
        type, when the spec has no rules); KeyError when no rule admits the name."""
        if not self.extra_rules:
            return None
        for pattern, typ in self.extra_rules:
            if re.fullmatch(pattern, name):
                return typ
        raise KeyError(name)

    @property
    def path(self) -> str:
        return self.type.path

    @property
    def has_run_id(self) -> bool:
        return "run_id" in self.schema.names


SIDE_FIELD = _f("side", _S)
"""'long' or 'short' (1.2.0; older runs read as 'long')."""

ALERTS_SCHEMA = pa.schema([
    _f("call_id", _S), _f("mint", _S), _f("caller_name", _S), _f("chain", _S),
    _f("alert_ts_ms", _I), _f("created_at", _S), SIDE_FIELD,
])

PATHS_SCHEMA = pa.schema([
    _f("run_id", _S), _f("call_id", _S), _f("caller_name", _S), _f("mint", _S), _f("chain", _S),
    _f("interval", _S), _f("alert_ts_ms", _I), _f("p0", _F),
    _f("hit_2x", _B), _f("t_2x_ms", _I, True),
    _f("hit_3x", _B), _f("t_3x_ms", _I, True),
    _f("hit_4x", _B), _f("t_4x_ms", _I, True),
    _f("dd_bps", _F), _f("dd_to_2x_bps", _F, True), _f("alert_to_activity_ms", _I, True),
    _f("peak_multiple", _F), SIDE_FIELD,
])
STANDARD_LEVELS = (2.0, 3.0, 4.0)
"""The levels whose hit_/t_ columns every paths artifact has (extra levels add columns)."""


def level_column_suffix(multiple: float) -> str:
    """The ``<m>`` of ``hit_<m>x`` / ``t_<m>x_ms`` for a level: the shortest repr of the
    float, '.0' dropped and '.' as '_' (2.0 -> '2', 1.05 -> '1_05', 2.5 -> '2_5'), so a
    level column is a plain SQL identifier."""
    text = repr(float(multiple))
    return text.removesuffix(".0").replace(".", "_")


LEVEL_COLUMN_RULES = ((r"hit_\d+(?:_\d+)?x", _B), (r"t_\d+(?:_\d+)?x_ms", _I))
"""The only extra columns a paths artifact may have: one pair per extra level."""

"""Paths may carry more level columns (``hit_<m>x``, ``t_<m>x_ms``) for a run's own
``levels`` beyond 2/3/4, so the spec allows extra columns and the catalog unions them."""

# Built-in features are typed when present; other feature columns may be added freely.
FEATURES_SCHEMA = pa.schema([_f("run_id", _S), _f("call_id", _S)])
BUILTIN_FEATURES = pa.schema([
    _f("vol_pre_alert", _F, True), _f("volume_spike", _F, True),
    _f("caller_prior_calls", _I), _f("caller_prior_hit_2x_rate", _F, True),
])

TRADES_SCHEMA = pa.schema([
    _f("run_id", _S), _f("policy_id", _S), _f("call_id", _S),
    _f("entry_ts_ms", _I), _f("entry_px", _F), _f("exit_ts_ms", _I), _f("exit_px", _F),
    _f("exit_reason", _S), _f("realized_return_bps", _F), _f("stop_out", _B),
    _f("max_adverse_excursion_bps", _F), _f("time_exposed_ms", _I),
    _f("tail_capture", _F, True), SIDE_FIELD,
])

WIN_LOSS_FIELDS = (_f("win_rate", _F, True), _f("profit_factor", _F, True))

PORTFOLIO_FIELDS = (
    _f("final_equity", _F, True), _f("total_return", _F, True),
    _f("annualised_return", _F, True), _f("max_drawdown", _F, True),
    _f("max_drawdown_duration_ms", _I, True), _f("sharpe", _F, True), _f("sortino", _F, True),
    _f("calmar", _F, True), _f("exposure_time", _F, True), _f("trades_taken", _I, True),
    _f("skipped_signals", _I, True),
)
"""The portfolio metrics of a summary row (quantbot.backtest.engine.portfolio)."""

SUMMARY_1_2_FIELDS = (
    _f("split", _S, True), *WIN_LOSS_FIELDS, _f("avg_win_bps", _F, True),
    _f("avg_loss_bps", _F, True), *PORTFOLIO_FIELDS,
)

SUMMARY_SCHEMA = pa.schema([
    _f("run_id", _S), _f("policy_id", _S), _f("caller_name", _S, True),
    _f("calls_processed", _I), _f("calls_excluded", _I), _f("trades_count", _I),
    _f("avg_return_bps", _F, True), _f("median_return_bps", _F, True),
    _f("p25_return_bps", _F, True), _f("p75_return_bps", _F, True),
    _f("p90_return_bps", _F, True), _f("stop_out_rate", _F, True),
    _f("avg_max_adverse_excursion_bps", _F, True), _f("avg_time_exposed_ms", _F, True),
    _f("median_time_exposed_ms", _F, True), _f("avg_tail_capture", _F, True),
    _f("median_tail_capture", _F, True),
    # 1.2.0: which calls the row is about, win/loss statistics, and the portfolio's numbers
    *SUMMARY_1_2_FIELDS,
])

FRONTIER_VALIDATION_FIELDS = (
    _f("validation_objective_score", _F, True), _f("validation_median_return_bps", _F, True),
    _f("validation_meets_constraints", _B, True), _f("validation_trades_count", _I, True),
    _f("overfit", _B, True),
)

FRONTIER_1_2_FIELDS = (
    _f("split", _S, True), _f("validation_rank", _I, True), _f("aliases", _S, True),
    *WIN_LOSS_FIELDS, _f("sharpe", _F, True), _f("total_return", _F, True),
    _f("max_drawdown", _F, True),
)
"""1.2.0: which calls the unprefixed figures are about (``train`` with a split, else
``all``), the rank among the validation results, the equivalent policies a row stands for,
win/loss and portfolio figures."""

FRONTIER_SCHEMA = pa.schema([
    _f("run_id", _S), _f("caller_name", _S), _f("policy_id", _S), _f("policy_params", _S),
    _f("meets_constraints", _B), _f("objective_score", _F),
    _f("avg_return_bps", _F), _f("median_return_bps", _F), _f("stop_out_rate", _F),
    _f("p95_drawdown_bps", _F), _f("avg_time_exposed_ms", _F), _f("trades_count", _I),
    _f("rank", _I),
    # 1.1.0: out-of-sample validation (null when the optimizer ran without a split)
    *FRONTIER_VALIDATION_FIELDS,
    *FRONTIER_1_2_FIELDS,
])

ERRORS_SCHEMA = pa.schema([
    _f("run_id", _S), _f("timestamp", _S), _f("level", _S), _f("phase", _S),
    _f("call_id", _S, True), _f("message", _S), _f("details", _S, True),
])

EQUITY_SCHEMA = pa.schema([
    _f("run_id", _S), _f("policy_id", _S), _f("caller_name", _S, True), _f("split", _S),
    _f("ts_ms", _I), _f("equity", _F), _f("cash", _F), _f("exposure", _F),
    _f("open_positions", _I), _f("drawdown", _F),
])
"""The portfolio's realised equity curve (1.2.0): one row per event time of one portfolio
(a policy, a caller or null = pooled, a split)."""

ARTIFACT_SPECS: dict[ArtifactType, ArtifactSpec] = {
    s.type: s
    for s in (
        ArtifactSpec(ArtifactType.ALERTS, ALERTS_SCHEMA, extra_columns=True),
        ArtifactSpec(ArtifactType.PATHS, PATHS_SCHEMA, extra_columns=True,
                     extra_rules=LEVEL_COLUMN_RULES),
        ArtifactSpec(ArtifactType.FEATURES, FEATURES_SCHEMA, extra_columns=True),
        ArtifactSpec(ArtifactType.TRADES, TRADES_SCHEMA),
        ArtifactSpec(ArtifactType.SUMMARY, SUMMARY_SCHEMA),
        ArtifactSpec(ArtifactType.FRONTIER, FRONTIER_SCHEMA),
        ArtifactSpec(ArtifactType.ERRORS, ERRORS_SCHEMA),
        ArtifactSpec(ArtifactType.EQUITY, EQUITY_SCHEMA),
    )
}

# Allowed values of the errors artifact's enumerated columns.
ERROR_LEVELS = ("error", "warning", "info")
ERROR_PHASES = ("plan", "coverage", "slice", "execution", "optimization", "store")
