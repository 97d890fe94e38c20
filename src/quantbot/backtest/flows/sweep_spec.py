"""The sweep spec: many independent runs described by one JSON object, checked as a whole.

A sweep is the cartesian product ``inputs × subsets × run_types × (policies | grids)``, or
an explicit ``tasks`` list (or both: the product's tasks first), plus shared ``options`` (docs/scale-out.md, "The spec").
:func:`load_spec` validates everything a task needs before anything runs: the structure
(pydantic), every input path, every option (the flows' own checks: :class:`FlowParams`,
:class:`~quantbot.backtest.data.inputs.InputSpec`), every policy and grid, and the alert
subsets (the alerts are read once per input to find its callers and months, and each filter
is tried). A spec that cannot run is refused with one line naming the JSON path, before any
run directory exists.

Subsets become the flows' own input options, so a task's run records them like any run:
a caller is ``alerts_query`` over the source's caller column with the name as a quoted
SQL literal (never spliced in raw); a month is ``date_from`` / ``date_to``; a filter is the
user's predicate in ``alerts_query``. Relative paths are relative to the spec file's folder
(the current directory for a spec given as a dict), made absolute here, since workers on
other machines have other working directories.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quantbot.backtest.data.inputs import InputSpec
from quantbot.backtest.flows.params import FEE_FIELDS, FlowParams
from quantbot.errors import QuantbotError, SweepSpecError

RUN_TYPE_ALIASES = {"path-only": "path-only", "path_only": "path-only", "policy": "policy",
                    "optimization": "optimization", "optimize": "optimization", "full": "full"}
_SPEC_KEYS = tuple(f.name for f in fields(InputSpec) if f.name not in ("alerts", "candles"))
_PARAM_KEYS = tuple(f.name for f in fields(FlowParams))
#: Flow arguments beyond the common options: which run types take them.
_FLOW_EXTRAS = {"portfolio": ("policy", "optimization", "full"),
                "config": ("optimization", "full"), "per_caller": ("optimization", "full")}
OPTION_KEYS = frozenset({*_SPEC_KEYS, *_PARAM_KEYS, "durable", *_FLOW_EXTRAS})
_PATH_KEYS = ("alerts", "candles")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubsetModel(_Strict):
    """``{"by": "caller"}``, ``{"by": "month"}`` or ``{"filter": "<SQL>", "name": ...}``."""

    by: Literal["caller", "month"] | None = None
    filter: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> SubsetModel:
        if (self.by is None) == (self.filter is None):
            raise ValueError('give exactly one of "by" (caller | month) and "filter"')
        if self.by is not None and self.name is not None:
            raise ValueError('"name" applies to a filter subset only')
        return self


class InputModel(BaseModel):
    """An input: ``alerts``, ``candles``, an optional ``name`` and any option."""

    model_config = ConfigDict(extra="allow")
    alerts: str = Field(min_length=1)
    candles: str = Field(min_length=1)
    name: str | None = Field(default=None, min_length=1)


class TaskModel(_Strict):
    """One explicit task (a subset here still expands to one task per caller/month)."""

    run_type: str
    input: int | str | None = None  # an index into inputs or an input's name
    subset: SubsetModel | None = None
    policy: str | dict[str, Any] | None = None
    grid: str | dict[str, Any] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class SweepModel(_Strict):
    description: str | None = None
    inputs: list[InputModel] = Field(min_length=1)
    subsets: list[SubsetModel] = Field(default_factory=list)
    run_types: list[str] = Field(default_factory=list)
    policies: list[str | dict[str, Any]] = Field(default_factory=list)
    grids: list[str | dict[str, Any] | None] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    tasks: list[TaskModel] | None = None

    @model_validator(mode="after")
    def _tasks_or_product(self) -> SweepModel:
        if not self.tasks and not self.run_types:
            raise ValueError('give "run_types" (the product) and/or an explicit "tasks" list')
        return self


@dataclass(frozen=True)
class SweepTask:
    """One task as a worker receives it (picklable): the flow, its inputs and arguments.

    ``options``: the flow's keyword options (absolute paths; no base_dir, run_id or sweep:
    the runner adds them); ``policy`` / ``grid`` / ``extras`` the flow-specific ones.
    """

    key: str
    run_type: str
    alerts: str
    candles: str
    options: dict[str, Any]
    policy: Any = None
    grid: Any = None
    extras: dict[str, Any] = field(default_factory=dict)  # portfolio, config, per_caller

    def describe(self) -> dict[str, Any]:
        """What the sweep's manifest records of the task (JSON)."""
        out: dict[str, Any] = {"key": self.key, "run_type": self.run_type,
                               "alerts": self.alerts, "candles": self.candles,
                               "options": self.options}
        if self.policy is not None:
            out["policy"] = self.policy
        if self.grid is not None or self.run_type in ("optimization", "full"):
            out["grid"] = self.grid
        return {**out, **self.extras}


@dataclass(frozen=True)
class Sweep:
    """A validated spec: its JSON (as recorded), where it came from, its tasks in order."""

    spec: dict[str, Any]
    source: str  # the spec file's absolute path, or "api"
    tasks: list[SweepTask]


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any]) -> Sweep:
    """Read and validate a sweep spec (a JSON file path or a dict); SweepSpecError (one
    line: the file and the JSON path) for anything that would stop a task."""
    if isinstance(spec, Mapping):
        data, label, base = dict(spec), "sweep spec", Path.cwd()
    else:
        path = Path(spec).expanduser().resolve()
        label, base = f"sweep spec {spec}", path.parent
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SweepSpecError(f"{label}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SweepSpecError(f"{label}: cannot read it: {exc}") from None
        except json.JSONDecodeError as exc:
            raise SweepSpecError(f"{label}: not JSON: {exc.msg} at line {exc.lineno} "
                                 f"column {exc.colno}") from None
    try:
        model = SweepModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = json_path(err["loc"])
        raise SweepSpecError(f"{label}: {where + ': ' if where else ''}"
                             f"{err['msg'].removeprefix('Value error, ')}") from None
    tasks = _Expander(model, base, label).tasks()
    source = "api" if isinstance(spec, Mapping) else str(Path(spec).expanduser().resolve())
    return Sweep(json.loads(model.model_dump_json(exclude_none=True)), source, tasks)


def json_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('inputs', 0, 'alerts')`` -> ``inputs[0].alerts``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "union[", "str", "dict", "list", "int")):
            out += f".{part}" if out else str(part)
    return out


@dataclass
class _Subset:
    label: str  # "all", "caller=alice", "month=2026-01", "<name>"
    options: dict[str, Any]  # alerts_query / date_from / date_to


class _Expander:
    """Turns the model into checked tasks; every error names its JSON path."""

    def __init__(self, model: SweepModel, base: Path, label: str) -> None:
        self.model, self.base, self.label = model, base, label
        self._subsets: dict[tuple[int, int | str], list[_Subset]] = {}
        self._grids: dict[str, Any] = {}
        self._specs: dict[str, InputSpec] = {}

    def fail(self, where: str, message: str) -> SweepSpecError:
        return SweepSpecError(f"{self.label}: {where}: {message}")

    # -- the product or the explicit list ----------------------------------------------
    def tasks(self) -> list[SweepTask]:
        m = self.model
        self._check_options(m.options, "options")
        self._params(_common(m.options), "options")
        self._check_extras(m.options, "options")
        for i, inp in enumerate(m.inputs):  # blame the input when the input's option is bad
            self._check_options(self._input_options(inp), f"inputs[{i}]")
            self._check_extras(self._input_options(inp), f"inputs[{i}]")
            self._params(_common({**m.options, **self._input_options(inp)}), f"inputs[{i}]")
        out: list[tuple[str, SweepTask]] = []
        if m.run_types:  # the product first, then the explicit tasks
            subsets = [(f"subsets[{j}]", s) for j, s in enumerate(m.subsets)] or [("", None)]
            for i in range(len(m.inputs)):
                for where_s, subset in subsets:
                    for r, run_type in enumerate(m.run_types):
                        rt = self._run_type(run_type, f"run_types[{r}]")
                        for item, where_i in self._items(rt, f"run_types[{r}]"):
                            out += self._expand(i, subset, where_s, rt, item, where_i, {}, "")
        for t, task in enumerate(m.tasks or []):
            where = f"tasks[{t}]"
            rt = self._run_type(task.run_type, f"{where}.run_type")
            i = self._input_index(task.input, f"{where}.input")
            self._check_options(task.options, f"{where}.options")
            self._check_extras(task.options, f"{where}.options")
            item, where_i = self._task_item(task, rt, where)
            out += self._expand(i, task.subset, f"{where}.subset", rt, item, where_i,
                                task.options, f"{where}.options")
        if not out:
            raise SweepSpecError(f"{self.label}: the spec describes no task (a by-caller or "
                                 "by-month subset over inputs without alerts?)")
        return _unique_keys(out)

    def _items(self, rt: str, where: str) -> list[tuple[Any, str]]:
        m = self.model
        if rt == "path-only":
            return [(None, "")]
        if rt == "policy":
            if not m.policies:
                raise self.fail(where, 'run type policy needs "policies"')
            return [(p, f"policies[{k}]") for k, p in enumerate(m.policies)]
        return [(g, f"grids[{k}]") for k, g in enumerate(m.grids)] or [(None, "grids")]

    def _task_item(self, task: TaskModel, rt: str, where: str) -> tuple[Any, str]:
        if rt == "policy":
            if task.policy is None:
                raise self.fail(where, 'a policy task needs "policy"')
            if task.grid is not None:
                raise self.fail(f"{where}.grid", "a policy task takes no grid")
            return task.policy, f"{where}.policy"
        if task.policy is not None:
            raise self.fail(f"{where}.policy", f"a {rt} task takes no policy")
        if rt == "path-only" and task.grid is not None:
            raise self.fail(f"{where}.grid", "a path-only task takes no grid")
        return task.grid, f"{where}.grid"

    def _run_type(self, text: str, where: str) -> str:
        if text not in RUN_TYPE_ALIASES:
            raise self.fail(where, f"unknown run type {text!r} (expected path-only, policy, "
                                   "optimization (or optimize) or full)")
        return RUN_TYPE_ALIASES[text]

    def _input_index(self, ref: int | str | None, where: str) -> int:
        inputs = self.model.inputs
        if ref is None:
            if len(inputs) > 1:
                raise self.fail(where, f"required: the spec has {len(inputs)} inputs")
            return 0
        if isinstance(ref, int):
            if not 0 <= ref < len(inputs):
                raise self.fail(where, f"no input {ref} (there are {len(inputs)})")
            return ref
        names = [inp.name for inp in inputs]
        if ref not in names:
            raise self.fail(where, f"no input named {ref!r}")
        return names.index(ref)

    # -- options -----------------------------------------------------------------------
    @staticmethod
    def _input_options(inp: InputModel) -> dict[str, Any]:
        return dict(inp.model_extra or {})

    def _check_options(self, options: Mapping[str, Any], where: str) -> None:
        unknown = sorted(set(options) - OPTION_KEYS)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", "unknown option (expected a flow option "
                            "such as horizon, interval, entry, levels, taker_fee_bps, "
                            "alerts_query, candles_columns, portfolio, config, per_caller)")

    def _path(self, text: str, where: str) -> str:
        path = Path(text).expanduser()
        path = path if path.is_absolute() else self.base / path
        if not path.exists():
            raise self.fail(where, f"file not found: {path}")
        return str(path.resolve())

    def _expand(self, i: int, subset: SubsetModel | None, where_s: str, rt: str, item: Any,
                where_i: str, task_options: dict[str, Any], where_o: str
                ) -> list[tuple[str, SweepTask]]:
        inp = self.model.inputs[i]
        alerts = self._path(inp.alerts, f"inputs[{i}].alerts")
        candles = self._path(inp.candles, f"inputs[{i}].candles")
        merged = {**self.model.options, **self._input_options(inp), **task_options}
        where = where_o or f"inputs[{i}]"
        extras = {k: merged.pop(k) for k in list(merged) if k in _FLOW_EXTRAS}
        extras = {k: v for k, v in extras.items() if rt in _FLOW_EXTRAS[k]}
        if rt == "path-only":  # shared fee options do not apply to a truth-layer run
            merged = {k: v for k, v in merged.items() if k not in FEE_FIELDS}
        params = self._params(merged, where)
        item, label = self._item(rt, item, where_i, params)
        self._input_spec(alerts, candles, merged, where)  # the subsets' options are ours
        out = []
        for sub in self._subsets_of(i, subset, where_s, alerts, candles, merged):
            options = {**merged, **sub.options}
            parts = [rt] + ([self._input_label(i)] if len(self.model.inputs) > 1 else [])
            parts += [sub.label] + ([label] if label else [])
            task = SweepTask("/".join(parts), rt, alerts, candles, options,
                             item if rt == "policy" else None,
                             item if rt in ("optimization", "full") else None, extras)
            out.append((task.key, task))
        return out

    def _input_label(self, i: int) -> str:
        inp = self.model.inputs[i]
        return f"input={_clean(inp.name or Path(inp.alerts).stem)}"

    def _params(self, options: dict[str, Any], where: str) -> FlowParams:
        try:
            return FlowParams(**{k: options[k] for k in _PARAM_KEYS if k in options})
        except (QuantbotError, TypeError) as exc:
            raise self.fail(where, str(exc)) from None

    def _input_spec(self, alerts: str, candles: str, options: dict[str, Any],
                    where: str) -> InputSpec:
        chosen = {k: options[k] for k in _SPEC_KEYS if k in options}
        key = json.dumps([alerts, candles, chosen], sort_keys=True, default=str)
        if key not in self._specs:  # each check opens DuckDB: once per distinct input
            try:
                self._specs[key] = InputSpec(alerts=alerts, candles=candles, **chosen)
            except (QuantbotError, TypeError) as exc:
                raise self.fail(where, str(exc)) from None
        return self._specs[key]

    def _check_extras(self, options: Mapping[str, Any], where: str) -> None:
        """The flow-specific options (portfolio, config, per_caller), checked by the flows'
        own parsers."""
        from quantbot.backtest.flows.portfolio_step import resolve_portfolio
        from quantbot.backtest.optimize.objective import make_config

        for key, check in (("portfolio", resolve_portfolio), ("config", make_config)):
            if key in options:
                try:
                    check(options[key])
                except QuantbotError as exc:
                    raise self.fail(f"{where}.{key}", str(exc)) from None
        if "per_caller" in options and not isinstance(options["per_caller"], bool):
            raise self.fail(f"{where}.per_caller", "expected true or false")

    def _item(self, rt: str, item: Any, where: str, params: FlowParams) -> tuple[Any, str]:
        """(the policy or grid as the flow takes it, its label in the task key)."""
        if rt == "path-only":
            return None, ""
        if rt == "policy":
            from quantbot.backtest.engine.policies import canonical_json, parse_policy, policy_id

            try:
                policy = parse_policy(item)
            except QuantbotError as exc:
                raise self.fail(where, str(exc)) from None
            return json.loads(canonical_json(policy)), _clean(policy_id(policy))
        from quantbot.backtest.flows.optimization import resolve_grid

        grid, label = item, "grid=default"
        if isinstance(item, str):
            grid = self._path(item, where)
            label = f"grid={_clean(Path(item).stem)}"
        elif isinstance(item, dict):  # an inline grid: named by its families
            label = "grid=" + "+".join(sorted(_clean(f) for f in item.get("families", {})))
        cache_key = f"{json.dumps(grid, sort_keys=True)}@{params.interval_ms}"
        if cache_key not in self._grids:
            try:
                self._grids[cache_key] = resolve_grid(grid, params.interval_ms)[1]
            except QuantbotError as exc:
                raise self.fail(where, str(exc)) from None
        return grid, label

    # -- subsets -----------------------------------------------------------------------
    def _subsets_of(self, i: int, subset: SubsetModel | None, where: str, alerts: str,
                    candles: str, options: dict[str, Any]) -> list[_Subset]:
        if subset is None:
            return [_Subset("all", {})]
        key = (i, where + json.dumps(options, sort_keys=True, default=str))
        if key not in self._subsets:
            spec = self._input_spec(alerts, candles, options, f"inputs[{i}]")
            self._subsets[key] = self._resolve_subset(spec, subset, where)
        return self._subsets[key]

    def _resolve_subset(self, spec: InputSpec, subset: SubsetModel,
                        where: str) -> list[_Subset]:
        from quantbot.backtest.data.inputs import load_alert_inputs

        try:
            from_sql, caller_col = source_facts(spec)
            if subset.filter is not None:
                query = f"SELECT * FROM {from_sql} WHERE ({subset.filter})"
                load_alert_inputs(_replace(spec, query))  # refuse a bad predicate now
                label = _clean(subset.name or f"filter={subset.filter}"[:48])
                return [_Subset(label, {"alerts_query": query, "alerts_table": None})]
            table, _ = load_alert_inputs(spec)
        except QuantbotError as exc:
            raise self.fail(where, str(exc)) from None
        if subset.by == "caller":
            return [_Subset(f"caller={_clean(name)}", {
                "alerts_query": f"SELECT * FROM {from_sql} WHERE {caller_predicate(caller_col, name)}",
                "alerts_table": None})
                for name in sorted(set(table.column("caller_name").to_pylist()))]
        return [_month_subset(spec, month) for month in _months(table)]


def source_facts(spec: InputSpec) -> tuple[str, str]:
    """(what the input's alerts are selected FROM, keeping its own query or table; the
    source's caller column), from one look at the source."""
    from quantbot.backtest.data.columns import parse_column_map, resolve_columns
    from quantbot.backtest.data.sources import open_source

    with open_source(spec.alerts, "alerts", table=spec.alerts_table, query=spec.alerts_query,
                     tz=spec.tz) as src:
        optional = ("chain", "side") + (("mint",) if spec.symbol is not None else ())
        roles = resolve_columns(list(src.columns), "alerts", f"alerts source {src.path}",
                                optional, parse_column_map(spec.alerts_columns, "alerts"))
        return src.from_sql, str(roles["caller_name"])


def caller_predicate(column: str, caller: str) -> str:
    """SQL: ``column`` equals ``caller``, a quoted literal, so a name such as ``o'brien``
    or ``x' OR '1'='1`` is data, never SQL."""
    from quantbot.backtest.data.columns import literal, quote

    return f"CAST({quote(column)} AS VARCHAR) = {literal(caller)}"


def _replace(spec: InputSpec, query: str) -> InputSpec:
    from dataclasses import replace

    return replace(spec, alerts_query=query, alerts_table=None)


def _months(table: Any) -> list[str]:
    from datetime import UTC, datetime

    ts = table.column("alert_ts_ms").to_pylist()
    return sorted({datetime.fromtimestamp(v / 1e3, UTC).strftime("%Y-%m") for v in ts})


def _month_subset(spec: InputSpec, month: str) -> _Subset:
    """The month as date filters (UTC calendar month), within the input's own ones."""
    import calendar

    year, mon = map(int, month.split("-"))
    first, last = f"{month}-01", f"{month}-{calendar.monthrange(year, mon)[1]:02d}"
    lo, hi = spec.date_from, spec.date_to
    return _Subset(f"month={month}", {
        "date_from": lo if lo is not None and lo[:7] == month else first,
        "date_to": hi if hi is not None and hi[:7] == month else last})


def _common(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options every run type takes (no flow extras, no fees)."""
    return {k: v for k, v in options.items() if k not in _FLOW_EXTRAS and k not in FEE_FIELDS}


def _clean(text: str) -> str:
    """A label for a task key: no '/' (the key's separator) and no whitespace runs."""
    return "_".join(str(text).replace("/", "_").split())


def _unique_keys(items: list[tuple[str, SweepTask]]) -> list[SweepTask]:
    """Tasks in order; a key seen before gets ``~2``, ``~3``... (deterministic)."""
    from dataclasses import replace

    seen: dict[str, int] = {}
    used = {key for key, _ in items}
    out = []
    for key, task in items:
        n = seen.get(key, 0) + 1
        seen[key] = n
        if n > 1:
            new = f"{key}~{n}"
            while new in used:
                n += 1
                new = f"{key}~{n}"
            seen[key] = n
            used.add(new)
            task = replace(task, key=new)
        out.append(task)
    return out


__all__ = ["OPTION_KEYS", "RUN_TYPE_ALIASES", "Sweep", "SweepModel", "SweepTask",
           "caller_predicate", "json_path", "load_spec", "source_facts"]
