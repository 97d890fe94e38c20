"""The flows that produce runs: ``run_path_only`` (truth layer) and ``run_policy_backtest``.

Every flow goes through the same phases, each timed into the manifest's ``timing``:

- ``plan``: validate the parameters, create the run directory, load the alerts (date
  filters applied);
- ``slice``: load only the candles those alerts need, fingerprint both inputs;
- ``coverage``: locate each alert's anchor and window, exclude the calls that cannot be
  evaluated (one ``errors`` row each);
- ``execution``: the numeric core (paths + features, or simulation + summary);
- ``store``: write every artifact.

Parameters, the policy and the input paths are checked before the run directory is created,
so a bad flag leaves no run behind. From then on, an exception (an unreadable input, a bad
column) marks the run ``failed`` with the error in its manifest (the RunDirectory context
manager records it) and re-raises; ``timing.total_ms`` covers every phase. A run with zero
eligible calls completes with empty artifacts. The manifest records every parameter and
each input's path and fingerprint, which is what ``quantbot.backtest.flows.rerun`` needs to run
it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from quantbot.backtest.data.inputs import (
    InputSpec,
    check_paths_exist,
    load_alert_inputs,
    load_candle_inputs,
)
from quantbot.durations import format_duration, parse_duration, parse_interval
from quantbot.errors import QuantbotError

if TYPE_CHECKING:  # the numeric core (numba) is imported when a flow runs, not on import
    from quantbot.backtest.data.candle_set import CandleSet
    from quantbot.backtest.engine.windows import Windows

Progress = Callable[[str], None]
"""Called with a short label (e.g. 'loading candles') when a phase starts."""


class FlowParameterError(QuantbotError, ValueError):
    """A flow parameter that does not validate (horizon, interval, activity move, fees)."""


@dataclass(frozen=True)
class FlowParams:
    """Engine parameters shared by the flows; durations as text (``90s``, ``15m``, ``6h``)."""

    interval: str = "1m"
    horizon: str = "24h"
    activity_move_pct: float = 0.10  # a fraction: 0.1 = a 10 % move up or down
    pre_window: str = "1h"
    taker_fee_bps: float = 30.0  # per side
    slippage_bps: float = 10.0  # per side

    def __post_init__(self) -> None:
        interval_ms = parse_interval(self.interval)
        horizon_ms = parse_duration(self.horizon)
        if horizon_ms <= 0 or horizon_ms % interval_ms:
            raise FlowParameterError(f"horizon {self.horizon!r} must be a positive whole number "
                                     f"of {self.interval} intervals")
        if parse_duration(self.pre_window) <= 0:
            raise FlowParameterError(f"pre_window {self.pre_window!r} must be > 0")
        if not (0.0 < float(self.activity_move_pct) < 1.0):
            raise FlowParameterError(f"activity_move_pct must be > 0 and < 1 (a fraction; got "
                                     f"{self.activity_move_pct!r})")
        for name in ("taker_fee_bps", "slippage_bps"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value >= 0.0):
                raise FlowParameterError(f"{name} must be >= 0 bps (got {value!r})")
        # Normalised text, so '1440m' and '24h' record (and hash) the same.
        object.__setattr__(self, "horizon", format_duration(horizon_ms))
        object.__setattr__(self, "pre_window", format_duration(parse_duration(self.pre_window)))
        object.__setattr__(self, "activity_move_pct", float(self.activity_move_pct))
        object.__setattr__(self, "taker_fee_bps", float(self.taker_fee_bps))
        object.__setattr__(self, "slippage_bps", float(self.slippage_bps))

    @property
    def interval_ms(self) -> int:
        return parse_interval(self.interval)

    @property
    def horizon_ms(self) -> int:
        return parse_duration(self.horizon)

    @property
    def pre_window_ms(self) -> int:
        return parse_duration(self.pre_window)


@dataclass(frozen=True)
class FlowResult:
    """What a flow did: the run, its counts and headline metrics (for the CLI report)."""

    run_id: str
    run_dir: str
    run_type: str
    status: str
    calls: int  # all input calls (after date filters)
    eligible: int
    excluded: dict[str, int]  # reason -> count
    trades: int | None  # None for path-only runs
    metrics: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "excluded_total": self.excluded_total}


# The helpers below (PhaseClock, input_spec, create_flow_run, load_inputs, record_inputs,
# coverage_phase, take_columns, flow_result) are the shared skeleton of every flow;
# flows_optimize builds on them too.


class PhaseClock:
    """Accumulates wall time per phase (``<phase>_ms``) and reports phase starts."""

    def __init__(self, progress: Progress | None) -> None:
        self.ms: dict[str, float] = {}
        self._progress = progress

    @contextmanager
    def phase(self, name: str, label: str) -> Iterator[None]:
        if self._progress is not None:
            self._progress(label)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            key = f"{name}_ms"
            self.ms[key] = round(self.ms.get(key, 0.0) + (time.perf_counter() - t0) * 1e3, 3)


@dataclass
class PreparedInputs:
    """Loaded inputs plus each alert's window: everything execution needs."""

    spec: InputSpec
    params: FlowParams
    alerts: pa.Table
    candles: CandleSet
    windows: Windows | None
    records: dict[str, dict[str, object]]
    error_rows: dict[str, list] | None = None


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1e3, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def load_inputs(spec: InputSpec, params: FlowParams, clock: PhaseClock) -> PreparedInputs:
    with clock.phase("plan", "loading alerts"):
        alerts, alerts_record = load_alert_inputs(spec)
    with clock.phase("slice", "loading candles"):
        candles, candles_record = load_candle_inputs(
            spec, alerts, interval_ms=params.interval_ms, horizon_ms=params.horizon_ms,
            pre_window_ms=params.pre_window_ms)
    records = {"alerts": alerts_record.to_dict(), "candles": candles_record.to_dict()}
    return PreparedInputs(spec, params, alerts, candles, None, records)


def coverage_phase(prep: PreparedInputs, clock: PhaseClock) -> None:
    from quantbot.backtest.engine.error_rows import coverage_error_rows
    from quantbot.backtest.engine.windows import prepare_windows

    with clock.phase("coverage", "checking coverage"):
        mints = prep.alerts.column("mint").to_pylist()
        alert_ts = prep.alerts.column("alert_ts_ms").to_numpy(zero_copy_only=False)
        prep.windows = prepare_windows(prep.candles, prep.candles.mint_index(mints), alert_ts,
                                       prep.params.horizon_ms)
        prep.error_rows = coverage_error_rows(prep.alerts, prep.windows, prep.candles)


def _parameters(spec: InputSpec, p: FlowParams, run_params: dict[str, Any],
                records: dict[str, dict[str, object]]) -> dict[str, Any]:
    return {**run_params, "interval": p.interval, "horizon": p.horizon,
            "horizon_ms": p.horizon_ms, "activity_move_pct": p.activity_move_pct,
            "pre_window": p.pre_window, "ts_unit": spec.ts_unit, "date_from": spec.date_from,
            "date_to": spec.date_to, "inputs": records}


def _dataset(prep: PreparedInputs) -> dict[str, Any]:
    ts = prep.alerts.column("alert_ts_ms").to_numpy(zero_copy_only=False)
    out: dict[str, Any] = {"interval": prep.params.interval, "calls_count": prep.alerts.num_rows}
    if len(ts):
        out["from"], out["to"] = _iso_ms(int(ts.min())), _iso_ms(int(ts.max()))
    return out


def take_columns(alerts: pa.Table, names: tuple[str, ...], idx: np.ndarray) -> dict[str, pa.Array]:
    rows = pa.array(idx, pa.int64())
    return {n: alerts.column(n).take(rows) for n in names}


def create_flow_run(run_type: str, spec: InputSpec, params: FlowParams, run_params: dict[str, Any],
                base_dir: str | os.PathLike[str], durable: bool, run_id: str | None) -> Any:
    """The run directory, with every parameter but the input records (known after loading)."""
    from quantbot.artifacts import create_run_directory

    check_paths_exist(spec)
    return create_run_directory(run_type, run_id, base_dir,
                                parameters=_parameters(spec, params, run_params,
                                                       spec.source_records()),
                                dataset={"interval": params.interval}, durable=durable)


def record_inputs(run: Any, prep: PreparedInputs, run_params: dict[str, Any]) -> None:
    run.update_manifest(parameters=_parameters(prep.spec, prep.params, run_params, prep.records),
                        dataset=_dataset(prep))


def input_spec(alerts: str | os.PathLike[str], candles: str | os.PathLike[str],
          **kw: Any) -> InputSpec:
    return InputSpec(alerts=os.fspath(alerts), candles=os.fspath(candles), **kw)


def run_path_only(
    alerts: str | os.PathLike[str],
    candles: str | os.PathLike[str],
    *,
    alerts_query: str | None = None,
    alerts_table: str | None = None,
    candles_table: str | None = None,
    ts_unit: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    interval: str = "1m",
    horizon: str = "24h",
    activity_move_pct: float = 0.10,
    pre_window: str = "1h",
    base_dir: str | os.PathLike[str] = "runs",
    durable: bool = True,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> FlowResult:
    """Truth layer run: artifacts alerts, paths, features, errors. Returns a FlowResult."""
    from quantbot.backtest.engine.error_rows import exclusion_counts
    from quantbot.backtest.engine.features import compute_features
    from quantbot.backtest.engine.price_paths import compute_paths

    clock = PhaseClock(progress)
    with clock.phase("plan", "checking parameters"):
        params = FlowParams(interval, horizon, activity_move_pct, pre_window)
        spec = input_spec(alerts, candles, alerts_query=alerts_query, alerts_table=alerts_table,
                     candles_table=candles_table, ts_unit=ts_unit, date_from=date_from,
                     date_to=date_to)
        run = create_flow_run("path-only", spec, params, {}, base_dir, durable, run_id)
    with run:
        prep = load_inputs(spec, params, clock)
        record_inputs(run, prep, {})
        coverage_phase(prep, clock)
        with clock.phase("execution", "computing paths and features"):
            paths = compute_paths(prep.candles, prep.windows, params.activity_move_pct)
            caller = np.asarray(prep.alerts.column("caller_name").to_pylist(), dtype=object)
            features = compute_features(prep.candles, prep.windows, caller, paths,
                                        params.pre_window_ms)
            idx = paths.alert_idx
            path_cols = {**take_columns(prep.alerts, ("call_id", "caller_name", "mint", "chain"), idx),
                         "interval": [params.interval] * len(idx),
                         "alert_ts_ms": prep.alerts.column("alert_ts_ms").take(pa.array(idx)),
                         **paths.columns()}
            feature_cols = {"call_id": prep.alerts.column("call_id"), **features}
        with clock.phase("store", "writing artifacts"):
            run.write_artifact("alerts", prep.alerts)
            run.write_artifact("paths", path_cols)
            run.write_artifact("features", feature_cols)
            run.write_artifact("errors", prep.error_rows)
        run.update_manifest(timing=clock.ms)
    n = len(idx)
    metrics = {f"hit_{k}x_rate": (float(getattr(paths, f"hit_{k}x").mean()) if n else None)
               for k in (2, 3, 4)}
    metrics["median_peak_multiple"] = float(np.median(paths.peak_multiple)) if n else None
    return flow_result(run, prep, exclusion_counts(prep.windows), None, metrics, clock)


def run_policy_backtest(
    alerts: str | os.PathLike[str],
    candles: str | os.PathLike[str],
    policy: str | dict[str, Any] | Any,
    *,
    policy_id: str | None = None,
    alerts_query: str | None = None,
    alerts_table: str | None = None,
    candles_table: str | None = None,
    ts_unit: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    interval: str = "1m",
    horizon: str = "24h",
    activity_move_pct: float = 0.10,
    pre_window: str = "1h",
    taker_fee_bps: float = 30.0,
    slippage_bps: float = 10.0,
    base_dir: str | os.PathLike[str] = "runs",
    durable: bool = True,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> FlowResult:
    """One policy over every eligible call: artifacts alerts, trades, summary, errors.

    ``policy``: JSON text, a dict (snake_case or the original camelCase keys) or a parsed
    policy; ``policy_id`` defaults to the readable id derived from it.
    """
    import json

    from quantbot.backtest.engine.error_rows import exclusion_counts
    from quantbot.backtest.engine.policies import canonical_json, parse_policy
    from quantbot.backtest.engine.policies import policy_id as derive_policy_id
    from quantbot.backtest.engine.simulate import build_scan_index, simulate
    from quantbot.backtest.engine.summary import summarize

    clock = PhaseClock(progress)
    with clock.phase("plan", "checking parameters"):
        params = FlowParams(interval, horizon, activity_move_pct, pre_window, taker_fee_bps,
                            slippage_bps)
        parsed = parse_policy(policy)
        pid = policy_id or derive_policy_id(parsed)
        spec = input_spec(alerts, candles, alerts_query=alerts_query, alerts_table=alerts_table,
                     candles_table=candles_table, ts_unit=ts_unit, date_from=date_from,
                     date_to=date_to)
        run_params = {"policy": json.loads(canonical_json(parsed)), "policy_id": pid,
                      "taker_fee_bps": params.taker_fee_bps, "slippage_bps": params.slippage_bps}
        run = create_flow_run("policy", spec, params, run_params, base_dir, durable, run_id)
    with run:
        prep = load_inputs(spec, params, clock)
        record_inputs(run, prep, run_params)
        coverage_phase(prep, clock)
        with clock.phase("execution", "simulating trades"):
            index = build_scan_index(prep.candles)
            trades = simulate(parsed, prep.candles, prep.windows, params.taker_fee_bps,
                              params.slippage_bps, scan_index=index)
            n_excluded = int((~prep.windows.eligible).sum())
            summary = summarize(trades, len(trades), n_excluded)
            trade_cols = {"policy_id": [pid] * len(trades),
                          **take_columns(prep.alerts, ("call_id",), trades.alert_idx),
                          **trades.columns()}
        with clock.phase("store", "writing artifacts"):
            run.write_artifact("alerts", prep.alerts)
            run.write_artifact("trades", trade_cols)
            run.write_artifact("summary", [{"policy_id": pid, "caller_name": None, **summary}])
            run.write_artifact("errors", prep.error_rows)
        run.update_manifest(timing=clock.ms)
    metrics = {"policy_id": pid, **{k: summary[k] for k in (
        "avg_return_bps", "median_return_bps", "stop_out_rate")}}
    return flow_result(run, prep, exclusion_counts(prep.windows), len(trades), metrics, clock)


def flow_result(run: Any, prep: PreparedInputs, excluded: dict[str, int], trades: int | None,
            metrics: dict[str, Any], clock: PhaseClock) -> FlowResult:
    manifest = run.manifest
    timing = {k: v for k, v in (manifest.timing.model_dump() if manifest.timing else {}).items()
              if v is not None}
    return FlowResult(run.run_id, str(run.path), manifest.run_type, manifest.status,
                      prep.alerts.num_rows, int(prep.windows.eligible.sum()), excluded, trades,
                      metrics, timing)


def run_from_manifest(run_type: str, parameters: dict[str, Any], *,
                      base_dir: str | os.PathLike[str] = "runs", durable: bool = True,
                      progress: Progress | None = None) -> FlowResult:
    """Run the flow ``run_type`` again with the parameters a manifest recorded."""
    spec = InputSpec.from_manifest(parameters)
    common = dict(asdict(spec), interval=parameters.get("interval", "1m"),
                  horizon=parameters.get("horizon", "24h"),
                  activity_move_pct=parameters.get("activity_move_pct", 0.10),
                  pre_window=parameters.get("pre_window", "1h"), base_dir=base_dir,
                  durable=durable, progress=progress)
    if run_type == "path-only":
        return run_path_only(**common)
    if run_type == "policy":
        if "policy" not in parameters:
            raise FlowParameterError("run manifest has no parameters.policy to rerun from")
        return run_policy_backtest(policy=parameters["policy"],
                                   policy_id=parameters.get("policy_id"),
                                   taker_fee_bps=parameters.get("taker_fee_bps", 30.0),
                                   slippage_bps=parameters.get("slippage_bps", 10.0), **common)
    raise FlowParameterError(f"cannot rerun run type {run_type!r}: only path-only and policy runs "
                             "can be rerun")


__all__ = ["FlowParameterError", "FlowParams", "FlowResult", "InputSpec",
           "run_from_manifest", "run_path_only", "run_policy_backtest"]
