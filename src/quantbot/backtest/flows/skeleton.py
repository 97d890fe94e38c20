"""The one flow skeleton: plan → load and check → coverage → create run → execute → store → result.

Every flow (path-only, policy, optimization, full) is a :class:`Flow` that supplies two
steps of its own: ``plan`` (validate its own arguments, say what the manifest records of
them) and ``execute`` (the numeric core, returning the artifacts to write). :func:`run_flow`
does the rest, the same way for all, each phase timed into the manifest's ``timing``:

- ``plan``: validate the :class:`FlowParams` and the flow's arguments; load the alerts
  (date filters applied);
- ``slice``: load only the candles those alerts need (checked: duplicates, the interval
  against the spacing), fingerprint both inputs;
- ``coverage``: locate each alert's anchor and window, exclude the calls that cannot be
  evaluated (one ``errors`` row each); then create the run directory;
- the flow's own phases (``execution``, ``optimization``);
- ``store``: write ``alerts`` then the flow's artifacts.

Parameters, the flow's arguments and the inputs are checked and loaded before the run
directory is created, so a bad flag, a wrong column name, timestamp format or interval
leaves no run behind (a one-line error, nothing on disk). From then on an exception marks the run
``failed`` with the error in its manifest (the RunDirectory context manager) and re-raises;
``timing.total_ms`` covers every phase. A run with zero eligible calls completes with empty
artifacts. The manifest records every parameter and each input's path (or ``kind: memory``)
and fingerprint: what :func:`quantbot.backtest.flows.rerun.run_from_manifest` needs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import numpy as np
import pyarrow as pa

from quantbot.backtest.data.inputs import (
    Input,
    InputSpec,
    check_paths_exist,
    load_alert_inputs,
    load_candle_inputs,
)
from quantbot.backtest.flows.params import AUTO, FEE_FIELDS, FlowParams

if TYPE_CHECKING:  # the numeric core (numba) is imported when a flow runs, not on import
    from quantbot.artifacts import RunDirectory
    from quantbot.backtest.data.candle_set import CandleSet
    from quantbot.backtest.engine.windows import Windows

Progress = Callable[[str], None]
"""Called with a short label (e.g. 'loading candles') when a phase starts."""

RunHook = Callable[["RunDirectory"], AbstractContextManager[Any]]
"""Entered once the run directory exists, around loading through storing: the CLI tees the
process's output into the run's ``logs/`` with ``lambda run: run.capture_output()``. The
API never touches ``sys.stdout``/``sys.stderr`` by itself."""


class FlowOptions(TypedDict, total=False):
    """The keyword arguments every flow takes (defaults: :class:`FlowParams`, ``runs``)."""

    alerts_query: str | None  # SQL over the view 'alerts' (a file) or a DuckDB database
    alerts_table: str | None
    alerts_columns: dict[str, str] | str | None  # role -> column, e.g. {"mint": "symbol"}
    candles_query: str | None  # SQL over the view 'candles' (a file) or a DuckDB database
    candles_table: str | None
    candles_columns: dict[str, str] | str | None
    symbol: str | None  # the asset of a candle source without an asset column
    ts_unit: str | None  # 's' | 'ms' for integer candle timestamps; None = inferred
    alerts_ts_format: str | None  # strptime format of text alert times
    candles_ts_format: str | None
    tz: str  # time zone of naive timestamps (default UTC)
    side: str | None  # 'long' | 'short' for alerts without a side column
    duplicates: str  # 'error' | 'first' | 'last' for conflicting duplicate candles
    date_from: str | None  # ISO date/datetime, inclusive
    date_to: str | None
    interval: str
    horizon: str | None  # None: 24h, or 20 bars when longer
    activity_move_pct: float
    pre_window: str  # a duration or bars ('60bars', the default)
    entry: str  # 'close' | 'next-open'
    levels: str | tuple[float, ...]  # truth-layer multiples, default 2,3,4
    max_entry_delay: str | None  # None/'auto': 1 bar + the data's usual gap; 'none': no limit
    taker_fee_bps: float  # not for path-only runs
    slippage_bps: float  # not for path-only runs
    base_dir: str | os.PathLike[str]
    durable: bool  # fsync every file (False: scratch runs)
    run_id: str | None  # None: a fresh uuid4
    name: str | None  # the run's name: an annotation record written as the run is created
    sweep: dict[str, str] | None  # {"sweep_id", "task"}: recorded as parameters.sweep
    progress: Progress | None
    around_run: RunHook | None


_SPEC_KEYS = tuple(f.name for f in fields(InputSpec) if f.name not in ("alerts", "candles"))
_PARAM_KEYS = tuple(f.name for f in fields(FlowParams))


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
    settings: dict[str, Any] = field(default_factory=dict)  # interval, entry, levels, fees...

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "excluded_total": self.excluded_total}


class PhaseClock:
    """Accumulates wall time per phase (``<phase>_ms``) and reports phase starts."""

    def __init__(self, progress: Progress | None) -> None:
        self.started = time.perf_counter()  # the flow's start: timing.total_ms counts from it
        self.ms: dict[str, float] = {}
        self._progress = progress

    @contextmanager
    def phase(self, name: str, label: str) -> Iterator[None]:
        if self._progress is not None:
            self._progress(label)
        t0 = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            # The run's error.phase (artifacts reads this plain attribute, it cannot import
            # the flows); the innermost phase wins.
            if getattr(exc, "quantbot_phase", None) is None:
                with suppress(AttributeError, TypeError):
                    exc.quantbot_phase = name  # type: ignore[attr-defined]
            raise
        finally:
            key = f"{name}_ms"
            self.ms[key] = round(self.ms.get(key, 0.0) + (time.perf_counter() - t0) * 1e3, 3)


@dataclass
class PreparedInputs:
    """Loaded inputs plus each alert's window: everything ``execute`` needs."""

    spec: InputSpec
    params: FlowParams
    alerts: pa.Table
    candles: CandleSet
    windows: Windows
    records: dict[str, dict[str, object]]
    error_rows: dict[str, list]

    def columns(self, names: tuple[str, ...], idx: np.ndarray) -> dict[str, pa.Array]:
        """Alert columns ``names`` at the alert indices ``idx`` (e.g. a trade's call)."""
        rows = pa.array(idx, pa.int64())
        return {n: self.alerts.column(n).take(rows) for n in names}

    @cached_property
    def pre_alert_vol(self) -> np.ndarray:
        """Every alert's vol_pre_alert (NaN = null), computed once per run however many
        volatility-sized portfolios need it."""
        from quantbot.backtest.engine.features import pre_alert_features

        return pre_alert_features(self.candles, self.windows, self.params.pre_window_ms)[0]

    @property
    def callers(self) -> np.ndarray:
        return np.asarray(self.alerts.column("caller_name").to_pylist(), dtype=object)


@dataclass(frozen=True)
class Outcome:
    """What ``execute`` produced: artifacts in write order (after ``alerts``), metrics."""

    artifacts: dict[str, Any]
    metrics: dict[str, Any]
    trades: int | None  # None: the flow simulates no trades


class Flow:
    """One kind of run. Subclasses set ``run_type`` and supply ``plan`` and ``execute``;
    ``from_parameters`` rebuilds the flow from a manifest's ``parameters`` (rerun)."""

    run_type: ClassVar[str]
    uses_fees: ClassVar[bool] = True  # takes (and records) taker_fee_bps / slippage_bps

    def plan(self, params: FlowParams) -> dict[str, Any]:
        """Validate the flow's own arguments; what ``parameters`` records of them."""
        return {}

    def execute(self, prep: PreparedInputs, clock: PhaseClock) -> Outcome:
        raise NotImplementedError

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> Flow:
        raise NotImplementedError


def run_flow(flow: Flow, alerts: Input, candles: Input, options: FlowOptions) -> FlowResult:
    """Run ``flow`` over ``alerts`` and ``candles`` (paths or in-memory frames)."""
    opts: dict[str, Any] = dict(options)
    allowed = {*_SPEC_KEYS, *_PARAM_KEYS, "base_dir", "durable", "run_id", "name", "sweep",
               "progress", "around_run"} - (set() if flow.uses_fees else set(FEE_FIELDS))
    unknown = sorted(set(opts) - allowed)
    if unknown:  # what Python itself would say for a misspelt keyword
        raise TypeError(f"{flow.run_type} flow got an unexpected keyword argument {unknown[0]!r}")
    clock = PhaseClock(opts.get("progress"))
    with clock.phase("plan", "checking parameters"):
        params = FlowParams(**{k: opts[k] for k in _PARAM_KEYS if k in opts})
        run_params = {**flow.plan(params), **params.manifest_parameters(flow.uses_fees)}
        if opts.get("sweep"):  # the sweep (and its task) this run belongs to
            run_params["sweep"] = dict(opts["sweep"])
        spec = InputSpec(alerts=alerts, candles=candles,
                         **{k: opts[k] for k in _SPEC_KEYS if k in opts})
        check_paths_exist(spec)
        name = opts.get("name")
        if name:
            from quantbot.artifacts.ops.annotate import check_name, name_new_run

            check_name(name)
    # Inputs that are unusable as a whole (a wrong column, format, interval, conflicting
    # duplicates) are refused here, before a run directory exists.
    prep = _load(spec, params, clock)
    run_params.update(prep.params.manifest_parameters(flow.uses_fees))  # an 'auto' resolved
    with clock.phase("plan", "creating the run"):
        run = _create_run(flow.run_type, spec, run_params, prep, opts, clock.started)
    hook = opts.get("around_run")
    with run, (hook(run) if hook is not None else nullcontext()):
        if name:  # not in the manifest (a rerun has no name): a record beside the run;
            # inside ``with run`` so that a record that cannot be written fails the run
            name_new_run(run.storage, run.run_id, name, durable=opts.get("durable", True))
        outcome = flow.execute(prep, clock)
        with clock.phase("store", "writing artifacts"):
            run.write_artifact("alerts", prep.alerts)
            for kind, data in outcome.artifacts.items():
                run.write_artifact(kind, data)
        run.update_manifest(timing=clock.ms)
    return _result(run, prep, outcome)


def _create_run(run_type: str, spec: InputSpec, run_params: dict[str, Any],
                prep: PreparedInputs, opts: dict[str, Any], started: float) -> RunDirectory:
    """The run directory, with every parameter and the records of the loaded inputs."""
    from quantbot.artifacts import create_run_directory

    return create_run_directory(
        run_type, opts.get("run_id"), opts.get("base_dir", "runs"),
        parameters=_parameters(spec, run_params, prep.records), dataset=_dataset(prep),
        durable=opts.get("durable", True), started=started)


def _load(spec: InputSpec, params: FlowParams, clock: PhaseClock) -> PreparedInputs:
    from quantbot.backtest.engine.error_rows import coverage_error_rows, data_note_rows
    from quantbot.backtest.engine.windows import prepare_windows, usual_gap_ms

    with clock.phase("plan", "loading alerts"):
        alerts, alerts_record = load_alert_inputs(spec)
    with clock.phase("slice", "loading candles"):
        candles, candles_record = load_candle_inputs(
            spec, alerts, interval_ms=params.interval_ms, horizon_ms=params.horizon_ms,
            pre_window_ms=params.pre_window_ms, entry=params.entry)
    with clock.phase("coverage", "checking coverage"):
        mints = alerts.column("mint").to_pylist()
        alert_ts = alerts.column("alert_ts_ms").to_numpy(zero_copy_only=False)
        mint_idx, sides = candles.mint_index(mints), _side_codes(alerts)

        def locate(limit_ms: int | None) -> Windows:
            return prepare_windows(candles, mint_idx, alert_ts, params.horizon_ms,
                                   entry=params.entry, side=sides, max_entry_delay_ms=limit_ms)

        if params.max_entry_delay == AUTO:  # the usual gap is read inside the windows
            gap_ms = usual_gap_ms(candles, locate(None), params.interval_ms)
            params = params.with_entry_delay(gap_ms)
        windows = locate(params.max_entry_delay_ms)
        errors = coverage_error_rows(alerts, windows, candles)
        notes = data_note_rows(candles.warnings)
        errors = {k: notes[k] + errors[k] for k in errors}
    records = {"alerts": alerts_record.to_dict(), "candles": candles_record.to_dict()}
    return PreparedInputs(spec, params, alerts, candles, windows, records, errors)


def _side_codes(alerts: pa.Table) -> np.ndarray:
    """+1 (long) / -1 (short) per alert, from the alerts' ``side`` column."""
    side = alerts.column("side").to_numpy(zero_copy_only=False)
    return np.where(side == "short", -1, 1).astype(np.int8)


_RECORDED_IN_INPUTS = ("alerts_query", "alerts_table", "candles_query", "candles_table")


def _parameters(spec: InputSpec, run_params: dict[str, Any],
                records: dict[str, dict[str, object]]) -> dict[str, Any]:
    """``parameters`` of the manifest: the flow's, the input options (column mappings,
    formats, time zone, side...) and the inputs' records (which hold table and query)."""
    options = {k: getattr(spec, k) for k in _SPEC_KEYS if k not in _RECORDED_IN_INPUTS}
    return {**run_params, **options, "inputs": records}


def _dataset(prep: PreparedInputs) -> dict[str, Any]:
    from datetime import UTC, datetime

    from quantbot.artifacts.schema.layout import iso_utc

    ts = prep.alerts.column("alert_ts_ms").to_numpy(zero_copy_only=False)
    out: dict[str, Any] = {"interval": prep.params.interval, "calls_count": prep.alerts.num_rows}
    if len(ts):
        out["from"], out["to"] = (iso_utc(datetime.fromtimestamp(int(v) / 1e3, UTC))
                                  for v in (ts.min(), ts.max()))
    return out


def _result(run: RunDirectory, prep: PreparedInputs, outcome: Outcome) -> FlowResult:
    from quantbot.backtest.engine.error_rows import exclusion_counts

    manifest = run.manifest
    timing = {k: v for k, v in (manifest.timing.model_dump() if manifest.timing else {}).items()
              if v is not None}
    return FlowResult(run.run_id, str(run.path), manifest.run_type, manifest.status,
                      prep.alerts.num_rows, int(prep.windows.eligible.sum()),
                      exclusion_counts(prep.windows), outcome.trades, outcome.metrics, timing,
                      prep.params.manifest_parameters(with_fees=outcome.trades is not None))


def manifest_options(parameters: dict[str, Any], flow: Flow) -> tuple[Input, Input, FlowOptions]:
    """(alerts, candles, options): the inputs and FlowParams a manifest recorded, as
    ``run_flow`` arguments (rerun)."""
    spec = InputSpec.from_manifest(parameters)
    params = asdict(FlowParams.from_parameters(parameters))
    if not flow.uses_fees:
        params = {k: v for k, v in params.items() if k not in FEE_FIELDS}
    options = {**{k: getattr(spec, k) for k in _SPEC_KEYS}, **params}
    return spec.alerts, spec.candles, options  # type: ignore[return-value]


__all__ = ["Flow", "FlowOptions", "FlowResult", "Outcome", "PhaseClock", "PreparedInputs",
           "Progress", "RunHook", "manifest_options", "run_flow"]
