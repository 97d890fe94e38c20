"""Policy grids: a readable JSON file of policy *families* expanded into validated policies.

A grid file is ``{"description"?: str, "families": {<name>: <family>, ...}}``. A family is
one of

- a list of policies, used as written::

    "picked": [{"kind": "fixed_stop", "stop_pct": 0.2}, {"kind": "time_stop", "max_hold_ms": "6h"}]

- a ``kind`` with a ``product`` of candidate values: every combination of the lists is one
  policy; other keys are constants shared by every policy of the family (each ``product``
  value is a non-empty list of candidates, so a ladder's ``levels`` is a list of level lists)::

      "fixed": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.2], "take_profit_pct": [1]}}
      "trail": {"kind": "trailing_stop", "hard_stop_pct": 0.2, "product": {"trail_pct": [0.1]}}

- a ``combo`` of parts, each a family (list or product) or the name of a non-combo family of
  the same file; every combination of one policy per part is one combo policy, sub-policies in
  the order of the parts (the earliest exit wins, ties go to the first listed)::

      "trail_ladder": {"combo": ["trail", {"kind": "ladder", "product": {"levels": [[...]]}}]}

A time stop's ``max_hold_ms`` may be written in bars (``"5bars"``): it is then that many
candles of the run's interval, so one grid fits 1-minute and daily data alike (the default
grid's time stops are in bars).

Policies are validated by :func:`~quantbot.backtest.engine.policies.parse_policy` (so camelCase keys,
durations like ``"6h"`` and ``null`` = off work). Families expand in file order; a policy
that an earlier family already produced (same policy_id) is kept once, under the first
family. Mistakes raise :class:`GridError` naming the family and the offending entry.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from quantbot.backtest.engine.policies import (
    AnyPolicy,
    Combo,
    canonical_json,
    parse_policy,
    policy_id,
)
from quantbot.backtest.optimize.settings import DEFAULT_INTERVAL_MS
from quantbot.durations import parse_bars
from quantbot.errors import GridError, PolicyError

DEFAULT_GRID_RESOURCE = "default_grid.json"
_TOP_KEYS = {"description", "families"}


@dataclass(frozen=True)
class GridPolicy:
    """One policy of a grid and the family that produced it."""

    family: str
    policy: AnyPolicy
    policy_id: str
    params: str  # canonical JSON (the frontier's policy_params)


@dataclass(frozen=True)
class PolicyGrid:
    """The expanded grid: unique policies in family order."""

    entries: tuple[GridPolicy, ...]
    description: str = ""
    duplicates: int = 0  # policies dropped because an earlier family produced them

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def policies(self) -> list[AnyPolicy]:
        return [e.policy for e in self.entries]

    @property
    def policy_ids(self) -> list[str]:
        return [e.policy_id for e in self.entries]

    def family_sizes(self) -> dict[str, int]:
        """Policies per family (after de-duplication), in family order."""
        sizes: dict[str, int] = {}
        for e in self.entries:
            sizes[e.family] = sizes.get(e.family, 0) + 1
        return sizes

    def subset(self, families: list[str]) -> "PolicyGrid":
        """Only the given families (unknown names raise GridError)."""
        known = set(self.family_sizes())
        unknown = [f for f in families if f not in known]
        if unknown:
            raise GridError(f"grid: unknown family {unknown[0]!r} (known: {', '.join(known)})")
        keep = set(families)
        return PolicyGrid(tuple(e for e in self.entries if e.family in keep), self.description)


def parse_grid(obj: dict[str, Any] | str, interval_ms: int | None = None) -> PolicyGrid:
    """Expand a grid given as a dict or JSON text (see the module docstring); durations
    written in bars (``"5bars"``) need the run's ``interval_ms``."""
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as exc:
            raise GridError(f"grid: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("families"), dict):
        raise GridError('grid: must be a JSON object with a "families" object')
    extra = sorted(set(obj) - _TOP_KEYS)
    if extra:
        raise GridError(f"grid: unknown key {extra[0]!r} (expected description, families)")
    families: dict[str, Any] = obj["families"]
    if not families:
        raise GridError("grid.families: must name at least one family")
    entries: list[GridPolicy] = []
    seen: set[str] = set()
    duplicates = 0
    for name, spec in families.items():
        where = f"grid.families.{name}"
        if isinstance(spec, dict) and "combo" in spec:
            policies = _expand_combo(spec, families, where, interval_ms)
        else:
            policies = map(_identified, _expand(spec, where, interval_ms))
        for policy, pid, params in policies:
            if pid in seen:
                duplicates += 1
                continue
            seen.add(pid)
            entries.append(GridPolicy(name, policy, pid, params))
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise GridError("grid.description: must be a string")
    return PolicyGrid(tuple(entries), description, duplicates)


def load_grid(path: str | Path, interval_ms: int | None = None) -> PolicyGrid:
    """Read and expand a grid file (JSON); ``interval_ms`` resolves durations in bars."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise GridError(f"grid file {p}: cannot be read ({exc.strerror or exc})") from None
    try:
        return parse_grid(text, interval_ms)
    except GridError as exc:
        raise GridError(f"{p}: {exc}") from None


def default_grid_json() -> dict[str, Any]:
    """The built-in grid (``default_grid.json`` shipped in this package) as a dict."""
    text = resources.files("quantbot.backtest.optimize").joinpath(DEFAULT_GRID_RESOURCE).read_text("utf-8")
    return json.loads(text)


def default_grid(interval_ms: int = DEFAULT_INTERVAL_MS) -> PolicyGrid:
    """The original system's families and combos: about 600 policies. Its time stops are
    in bars (5 … 2880), so they follow the run's interval (1m bars: 5m … 48h, as in the
    original system; daily bars: 5d …)."""
    return parse_grid(default_grid_json(), interval_ms)


def _expand(spec: Any, where: str, interval_ms: int | None) -> list[AnyPolicy]:
    """A list family or a kind + product family -> validated policies."""
    if isinstance(spec, list):
        if not spec:
            raise GridError(f"{where}: an empty list of policies")
        return [_validate(p, f"{where}[{i}]", interval_ms) for i, p in enumerate(spec)]
    if not isinstance(spec, dict) or "kind" not in spec:
        raise GridError(f"{where}: must be a list of policies, an object with kind (and "
                        "product), or an object with combo")
    product = spec.get("product", {})
    if not isinstance(product, dict):
        raise GridError(f"{where}.product: must be an object of parameter -> list of values")
    for key, values in product.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"{where}.product.{key}: must be a non-empty list of values "
                            f"(got {json.dumps(values)})")
        if key in spec and key != "product":
            raise GridError(f"{where}.product.{key}: also given as a constant")
    base = {k: v for k, v in spec.items() if k != "product"}
    keys = list(product)
    out = []
    for i, combo in enumerate(itertools.product(*(product[k] for k in keys))):
        out.append(_validate({**base, **dict(zip(keys, combo))}, f"{where}[{i}]", interval_ms))
    return out


Identified = tuple[AnyPolicy, str, str]
"""A validated policy, its policy_id and its canonical JSON."""


def _identified(policy: AnyPolicy) -> Identified:
    return policy, policy_id(policy), canonical_json(policy)


def _expand_combo(spec: dict[str, Any], families: dict[str, Any], where: str,
                  interval_ms: int | None) -> Iterator[Identified]:
    """Every combination of one policy per part, generated one at a time. The parts are
    validated and identified once; a combo of validated parts needs no validation of its
    own (a non-empty list of policies), so it is assembled, with its policy_id and canonical
    JSON joined from its parts' (as :func:`policy_id` and :func:`canonical_json` write
    them): ~100x faster than validating every combo of a 10^5-policy grid."""
    extra = sorted(set(spec) - {"combo"})
    if extra:
        raise GridError(f"{where}: unknown key {extra[0]!r} next to combo")
    parts = spec["combo"]
    if not isinstance(parts, list) or len(parts) < 1:
        raise GridError(f"{where}.combo: must be a non-empty list of parts")
    expanded = []
    for i, part in enumerate(parts):
        part_where = f"{where}.combo[{i}]"
        if isinstance(part, str):
            ref = families.get(part)
            if ref is None:
                raise GridError(f"{part_where}: no family named {part!r}")
            if isinstance(ref, dict) and "combo" in ref:
                raise GridError(f"{part_where}: {part!r} is itself a combo family; "
                                "name non-combo families or write the part inline")
            expanded.append(_expand(ref, f"grid.families.{part}", interval_ms))
        else:
            expanded.append(_expand(part, part_where, interval_ms))
    for subs in itertools.product(*([_identified(p) for p in part] for part in expanded)):
        yield (Combo.model_construct(policies=[p for p, _, _ in subs]),
               "combo(" + "|".join(pid for _, pid, _ in subs) + ")",
               '{"kind":"combo","policies":[' + ",".join(js for _, _, js in subs) + "]}")


def _in_ms(obj: Any, interval_ms: int | None, where: str) -> Any:
    """``obj`` with every ``max_hold_ms`` written in bars (``"5bars"``) as ms."""
    if isinstance(obj, list):
        return [_in_ms(v, interval_ms, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _in_ms(v, interval_ms, where) for k, v in obj.items()}
    hold = out.get("max_hold_ms")
    bars = parse_bars(hold)
    if bars is not None:
        if interval_ms is None:
            raise GridError(f"{where}: max_hold_ms {hold!r} is in bars, which needs the "
                            "run's interval")
        out["max_hold_ms"] = bars * interval_ms
    return out


def _validate(obj: Any, where: str, interval_ms: int | None) -> AnyPolicy:
    try:
        return parse_policy(_in_ms(obj, interval_ms, where))
    except PolicyError as exc:
        shown = json.dumps(obj, sort_keys=True)
        if len(shown) > 160:
            shown = shown[:157] + "..."
        raise GridError(f"{where} {shown}: {exc}") from None
