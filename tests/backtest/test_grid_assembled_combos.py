"""Combo policies assembled from their validated parts (grid.py) are exactly what validating
each combo gives: the same policy, policy_id and canonical JSON; and the optimizer's
canonical keys (each shared part dumped once) are the full canonical forms' JSON."""

from __future__ import annotations

import json
import math

from quantbot.backtest.engine.policies import (
    Combo,
    TimeStop,
    canonical_json,
    parse_policy,
    policy_id,
)
from quantbot.backtest.optimize.grid import default_grid
from quantbot.backtest.optimize.search import _canonical_key


def test_assembled_combos_equal_validated_ones():
    grid = default_grid(60_000)
    combos = [e for e in grid.entries if e.policy.kind == "combo"]
    assert len(combos) == 486
    for e in combos:
        validated = parse_policy(json.loads(json.dumps(e.policy.model_dump(mode="json"))))
        assert validated == e.policy
        assert policy_id(validated) == e.policy_id
        assert canonical_json(validated) == e.params


def _reference(p, reach_ms, bar_ms):
    """The canonical form, written out (module docstring of search.py)."""
    if isinstance(p, Combo):
        return {"kind": "combo", "policies": [_reference(s, reach_ms, bar_ms) for s in p.policies]}
    out = p.model_dump(mode="json")
    if isinstance(p, TimeStop):
        hold = p.max_hold_ms if bar_ms is None else math.ceil(p.max_hold_ms / bar_ms) * bar_ms
        out["max_hold_ms"] = 0 if hold > reach_ms else hold
    return out


def test_canonical_keys_are_the_canonical_forms_json():
    leaves: dict = {}
    for reach, bar in ((3_600_000, 60_000), (10**12, None), (60_000, 3_600_000)):
        for e in default_grid(60_000).entries:
            assert _canonical_key(e.policy, reach, bar, leaves) == json.dumps(
                _reference(e.policy, reach, bar), sort_keys=True)
        leaves.clear()
