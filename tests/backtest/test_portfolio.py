"""Portfolio simulation against a plain-Python reference written from the module docstring."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from quantbot.backtest.engine.portfolio import (
    PortfolioConfig,
    parse_portfolio,
    portfolio_by_caller,
    portfolio_metrics,
    simulate_portfolio,
)
from quantbot.errors import PortfolioConfigError, PortfolioInputError

DAY = 86_400_000


def reference(ets, xts, ret, cfg: dict, vol=None, callers=None):
    """The docstring's rules as a loop over explicitly sorted events.

    Events: (time, phase, entry rank), exits phase 0 before entries phase 1; a zero-duration
    trade is closed inside its entry. Returns (taken, amount, skips, points).
    """
    capital = float(cfg.get("capital", 100_000.0))
    size = cfg.get("size", {"fraction": 0.01})
    maxc = cfg.get("max_concurrent")
    compound = cfg.get("compound", False)
    n = len(ets)
    key = (lambda i: (ets[i], callers[i], i)) if callers is not None else (lambda i: (ets[i], i))
    rank = {i: r for r, i in enumerate(sorted(range(n), key=key))}
    events = [(ets[i], 1, rank[i], i) for i in range(n)]
    events += [(xts[i], 0, rank[i], i) for i in range(n) if xts[i] > ets[i]]
    events.sort()
    cash, open_pos = capital, {}
    taken, amount = [False] * n, [0.0] * n
    skips = {"concurrency": 0, "cash": 0, "volatility": 0}
    points: list[tuple] = []
    for t, phase, _, i in events:
        touched = False
        if phase == 0:
            if i in open_pos:
                cash += open_pos.pop(i) * (1 + ret[i] / 1e4)
                touched = True
        elif maxc is not None and len(open_pos) >= maxc:
            skips["concurrency"] += 1
        else:
            base = cash + sum(open_pos.values()) if compound else capital
            if "amount" in size:
                a = size["amount"]
            elif "fraction" in size:
                a = size["fraction"] * base
            else:
                target = size["volatility"]["target_bps"] / 1e4
                f = size["volatility"].get("fraction", 0.01)
                v = vol[i]
                a = None if not (v > 0 and math.isfinite(v)) else base * min(1.0, f * target / v)
            if a is None:
                skips["volatility"] += 1
            elif a <= 0 or a > cash:
                skips["cash"] += 1
            else:
                taken[i], amount[i], touched = True, a, True
                if xts[i] == ets[i]:
                    cash += a * ret[i] / 1e4
                else:
                    cash -= a
                    open_pos[i] = a
        if touched:
            cost = sum(open_pos.values())
            state = (t, cash + cost, cash, cost, len(open_pos))
            if points and points[-1][0] == t:
                points[-1] = state
            else:
                points.append(state)
    return taken, amount, skips, points


def check_against_reference(ets, xts, ret, cfg, vol=None, callers=None):
    res = simulate_portfolio(np.array(ets, dtype=np.int64), np.array(xts, dtype=np.int64),
                             np.array(ret, dtype=float), cfg,
                             vol=None if vol is None else np.array(vol, dtype=float),
                             callers=callers)
    taken, amount, skips, points = reference(ets, xts, ret, cfg, vol, callers)
    assert res.taken.tolist() == taken
    np.testing.assert_allclose(res.amount, amount, rtol=1e-9, atol=1e-9)
    assert (res.skipped_concurrency, res.skipped_cash, res.skipped_volatility) == (
        skips["concurrency"], skips["cash"], skips["volatility"])
    assert res.ts_ms.tolist() == [p[0] for p in points]
    np.testing.assert_allclose(res.equity, [p[1] for p in points], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(res.cash, [p[2] for p in points], rtol=1e-9, atol=1e-6)
    assert res.open_positions.tolist() == [p[4] for p in points]
    exp = [p[3] / p[1] if p[1] > 0 else math.nan for p in points]
    np.testing.assert_allclose(res.exposure, exp, rtol=1e-9, atol=1e-9)
    peak, dd = res.capital, []
    for p in points:
        peak = max(peak, p[1])
        dd.append(p[1] / peak - 1)
    np.testing.assert_allclose(res.drawdown, dd, rtol=1e-9, atol=1e-9)
    return res


# ---------------------------------------------------------------- hand-made cases

# Overlapping positions, ties at t=20 and t=30 (exits before entries), a zero-duration trade
# (4) at t=30 and a third concurrent signal (trade 3) that the limit of 2 skips.
HAND = {"ets": [0, 10, 20, 15, 30, 30], "xts": [20, 30, 50, 25, 30, 60],
        "ret": [100.0, -200.0, 50.0, 999.0, 300.0, -100.0]}


def test_hand_case_fixed_amount_numbers():
    cfg = {"capital": 10_000, "size": {"amount": 1_000}, "max_concurrent": 2}
    res = check_against_reference(HAND["ets"], HAND["xts"], HAND["ret"], cfg)
    # t=15: trades 0 and 1 open -> 3 skipped; t=20: 0 exits (+10) before 2 enters; t=30: 1
    # exits (-20), then 4 opens and closes (+30), then 5 takes the free slot.
    assert res.taken.tolist() == [True, True, True, False, True, True]
    assert res.skipped_concurrency == 1 and res.skipped_cash == 0
    assert res.ts_ms.tolist() == [0, 10, 20, 30, 50, 60]
    assert res.equity.tolist() == pytest.approx([10_000, 10_000, 10_010, 10_020, 10_025, 10_015])
    assert res.cash.tolist() == pytest.approx([9_000, 8_000, 8_010, 8_020, 9_025, 10_015])
    assert res.open_positions.tolist() == [1, 2, 2, 2, 1, 0]
    assert res.amount.tolist() == [1_000, 1_000, 1_000, 0, 1_000, 1_000]
    identity = 10_000 + sum(1_000 * r / 1e4 for r, t in zip(HAND["ret"], res.taken) if t)
    assert res.final_equity == pytest.approx(identity, rel=1e-12) and identity == 10_015


def test_slot_freed_at_t_is_reused_at_t():
    res = simulate_portfolio(np.array([0, 10]), np.array([10, 20]), np.array([0.0, 0.0]),
                             {"size": {"amount": 1}, "max_concurrent": 1})
    assert res.taken.all() and res.open_positions.tolist() == [1, 1, 0]


@pytest.mark.parametrize("compound", [False, True])
def test_compounding_on_and_off_with_fraction(compound):
    # Sequential trades, +10% then +10%: with compounding the second one is 10% larger.
    cfg = {"capital": 1_000, "size": {"fraction": 0.5}, "compound": compound}
    res = check_against_reference([0, 10], [10, 20], [1_000.0, 1_000.0], cfg)
    assert res.amount.tolist() == pytest.approx([500.0, 525.0] if compound else [500.0, 500.0])
    assert res.final_equity == pytest.approx(1_102.5 if compound else 1_100.0)


def test_cash_skips_are_counted_apart_from_concurrency():
    # 60% of capital per trade: the second overlapping trade does not fit in the cash left.
    cfg = {"capital": 1_000, "size": {"fraction": 0.6}}
    res = check_against_reference([0, 5, 20], [10, 15, 30], [0.0, 0.0, 0.0], cfg)
    assert res.taken.tolist() == [True, False, True]
    assert res.skipped_cash == 1 and res.skipped_concurrency == 0


def test_losses_shrink_cash_until_fixed_amounts_no_longer_fit():
    cfg = {"capital": 1_000, "size": {"amount": 600}}
    res = check_against_reference([0, 10, 20], [10, 20, 30], [-7_000.0, 0.0, 0.0], cfg)
    assert res.taken.tolist() == [True, False, False] and res.skipped_cash == 2
    assert res.final_equity == pytest.approx(580.0)


def test_equal_entry_times_are_ordered_by_caller_then_trade_index():
    ets, xts, ret = [5, 5, 5], [9, 9, 9], [10.0, 20.0, 30.0]
    cfg = {"size": {"amount": 10}, "max_concurrent": 1}
    assert simulate_portfolio(np.array(ets), np.array(xts), np.array(ret), cfg).taken.tolist() \
        == [True, False, False]
    res = check_against_reference(ets, xts, ret, cfg, callers=["b", "a", "a"])
    assert res.taken.tolist() == [False, True, False]


def test_volatility_sizing():
    cfg = {"capital": 10_000, "size": {"volatility": {"target_bps": 100, "fraction": 0.1}}}
    vol = [0.01, 0.02, 0.0005, math.nan]  # at, twice, a twentieth of the 1% target; unknown
    res = check_against_reference([0, 1, 2, 3], [10, 10, 10, 10], [0.0] * 4, cfg, vol=vol)
    # The calm third trade asks for the whole 10,000 base: more than the 8,500 cash left.
    assert res.amount.tolist() == pytest.approx([1_000.0, 500.0, 0.0, 0.0])
    assert res.skipped_volatility == 1 and res.skipped_cash == 1
    capped = simulate_portfolio(np.array([0]), np.array([1]), np.array([0.0]), cfg,
                                vol=np.array([1e-6]))
    assert capped.amount.tolist() == [10_000.0]  # never more than the base


def test_volatility_sizing_without_volatilities_is_refused():
    with pytest.raises(PortfolioConfigError, match=r"^portfolio\.size\.volatility: .*none"):
        simulate_portfolio(np.array([0]), np.array([1]), np.array([0.0]),
                           {"size": {"volatility": {"target_bps": 50}}})


def test_no_trades_gives_an_empty_curve_and_null_metrics():
    res = simulate_portfolio(np.array([], dtype=np.int64), np.array([], dtype=np.int64),
                             np.array([]), {"capital": 5})
    m = portfolio_metrics(res, np.array([]))
    assert len(res.ts_ms) == 0 and m["final_equity"] == 5 and m["total_return"] == 0
    assert m["sharpe"] is None and m["win_rate"] is None and m["trades_taken"] == 0


# ---------------------------------------------------------------- configuration

@pytest.mark.parametrize(("text", "message"), [
    ('{"size": {"amount": -1}}', r"^portfolio\.size\.amount: .*greater than 0 \(got -1\)$"),
    ('{"size": {}}', r"^portfolio\.size: exactly one of amount, fraction, volatility \(got none\)$"),
    ('{"size": {"amount": 1, "fraction": 0.1}}', r"^portfolio\.size: .*\(got amount, fraction\)$"),
    ('{"size": {"fraction": 1.5}}', r"^portfolio\.size\.fraction: .*1"),
    ('{"capital": 0}', r"^portfolio\.capital: .*\(got 0\)$"),
    ('{"max_concurrent": 0}', r"^portfolio\.max_concurrent: "),
    ('{"compound": "maybe"}', r"^portfolio\.compound: "),
    ('{"sise": {}}', r"^portfolio\.sise: Extra inputs are not permitted"),
    ('{"size": {"volatility": {"fraction": 0.1}}}', r"^portfolio\.size\.volatility\.target_bps: "),
    ("[1]", r"^portfolio: must be a JSON object \(got list\)$"),
    ("{x", r"^portfolio: not valid JSON"),
])
def test_config_errors_are_one_line_naming_the_key(text, message):
    with pytest.raises(PortfolioConfigError, match=message) as info:
        parse_portfolio(text)
    assert "\n" not in str(info.value)


def test_config_defaults_and_dict_equals_json():
    cfg = parse_portfolio({"capital": 100000, "size": {"amount": 1000}, "max_concurrent": 20,
                           "compound": False})
    assert cfg == parse_portfolio('{"capital": 100000, "size": {"amount": 1000}, '
                                  '"max_concurrent": 20, "compound": false}')
    default = parse_portfolio(None)
    assert isinstance(default, PortfolioConfig) and default.capital == 100_000
    assert default.size.fraction == 0.01 and default.max_concurrent is None and not default.compound
    with pytest.raises(ValidationError, match="frozen"):
        default.capital = 1


@pytest.mark.parametrize(("ets", "xts", "ret", "message"), [
    ([0, 5], [3, 4], [0.0, 0.0], r"^portfolio: trade 1: exit_ts_ms 4 is before entry_ts_ms 5$"),
    ([0, 1], [3, 4], [0.0, math.nan], r"^portfolio: trade 1: realized_return_bps is nan"),
    ([0, 1], [3], [0.0, 0.0], r"^portfolio: exit_ts_ms has shape \(1,\)"),
])
def test_bad_trades_are_named(ets, xts, ret, message):
    with pytest.raises(PortfolioInputError, match=message):
        simulate_portfolio(np.array(ets), np.array(xts), np.array(ret), None)


# ---------------------------------------------------------------- metrics

def test_metrics_on_a_hand_curve():
    # Day 0 enter A and B, day 1 A exits +10%, day 2 B exits -20%, day 3..4 C +5%.
    ets = np.array([0, 0, 3 * DAY]) + 1
    xts = np.array([1 * DAY, 2 * DAY, 4 * DAY]) + 1
    ret = np.array([1_000.0, -2_000.0, 500.0])
    res = simulate_portfolio(ets, xts, ret, {"capital": 1_000, "size": {"amount": 100}})
    assert res.equity.tolist() == pytest.approx([1_000, 1_010, 990, 990, 995])
    m = portfolio_metrics(res, ret)
    span = 4 * DAY
    assert m["total_return"] == pytest.approx(-0.005)
    assert m["annualised_return"] is None and m["calmar"] is None  # 4 days: not annualised
    long = simulate_portfolio(ets * 10, xts * 10, ret, {"capital": 1_000, "size": {"amount": 100}})
    lm = portfolio_metrics(long, ret)
    assert lm["annualised_return"] == pytest.approx(0.995 ** (365.25 * DAY / (10 * span)) - 1)
    assert lm["calmar"] == pytest.approx(lm["annualised_return"] / abs(lm["max_drawdown"]))
    assert m["max_drawdown"] == pytest.approx(990 / 1010 - 1)
    assert m["max_drawdown_duration_ms"] == 3 * DAY  # peak at day 1, never regained
    assert m["exposure_time"] == pytest.approx(3 / 4)  # nothing open from day 2 to day 3
    assert (m["win_rate"], m["profit_factor"]) == (pytest.approx(2 / 3), pytest.approx(1500 / 2000))
    assert (m["avg_win_bps"], m["avg_loss_bps"]) == (750.0, -2_000.0)
    assert m["trades_taken"] == 3 and m["skipped_signals"] == 0
    # Daily samples at midnights 0..5 (equity after events strictly before each midnight).
    samples = [1_000, 1_000, 1_010, 990, 990, 995]
    r = [b / a - 1 for a, b in itertools.pairwise(samples)]
    mean = sum(r) / len(r)
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    down = math.sqrt(sum(min(x, 0) ** 2 for x in r) / len(r))
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(365.25))
    assert m["sortino"] == pytest.approx(mean / down * math.sqrt(365.25))
    weekly = portfolio_metrics(res, ret, period_ms=DAY, periods_per_year=52)
    assert weekly["sharpe"] == pytest.approx(mean / sd * math.sqrt(52))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"period_ms": 0}, r"^portfolio\.period_ms: must be > 0 \(got 0\)$"),
    ({"period_ms": 1}, r"^portfolio\.period_ms: 1 ms makes \d+ periods"),
    ({"periods_per_year": -1.0}, r"^portfolio\.periods_per_year: must be > 0"),
])
def test_bad_metric_settings_are_named(kwargs, message):
    res = simulate_portfolio(np.array([0]), np.array([400 * DAY]), np.array([1.0]), None)
    with pytest.raises(PortfolioConfigError, match=message):
        portfolio_metrics(res, np.array([1.0]), **kwargs)


def test_drawdown_duration_ends_at_recovery():
    ets, xts = np.array([0, 10, 20]), np.array([10, 20, 30])
    ret = np.array([-1_000.0, 2_000.0, -100.0])
    res = simulate_portfolio(ets, xts, ret, {"capital": 1_000, "size": {"amount": 100}})
    # 1000 @0, 990 @10 (under), 1010 @20 (recovered: 20 ms from the peak at 0), 1009 @30.
    assert portfolio_metrics(res, ret)["max_drawdown_duration_ms"] == 20


def test_no_losing_trade_means_null_profit_factor_and_calmar():
    res = simulate_portfolio(np.array([1]), np.array([DAY - 1]), np.array([100.0]), None)
    m = portfolio_metrics(res, np.array([100.0]))
    assert m["profit_factor"] is None and m["calmar"] is None and m["max_drawdown"] == 0
    assert m["avg_loss_bps"] is None and m["win_rate"] == 1.0
    assert m["sharpe"] is None  # one daily period only


def test_by_caller_and_pooled():
    callers = np.array(["b", "a", "b", "a"])
    ets, xts = np.array([0, 0, 5, 5]), np.array([10, 10, 15, 15])
    ret = np.array([100.0, 200.0, -50.0, 10.0])
    cfg = {"capital": 1_000, "size": {"amount": 100}, "max_concurrent": 1}
    out = portfolio_by_caller(callers, ets, xts, ret, cfg)
    assert [name for name, _, _ in out] == ["a", "b", None]
    a, b, pooled = (res for _, res, _ in out)
    assert a.taken.tolist() == [True, False] and b.taken.tolist() == [True, False]
    assert pooled.taken.tolist() == [False, True, False, False]  # caller "a" first at t=0
    assert out[2][2]["final_equity"] == pytest.approx(1_002.0)
    assert out[0][2]["trades_taken"] == 1 and out[2][2]["skipped_signals"] == 3


# ---------------------------------------------------------------- properties

@st.composite
def trades_and_config(draw, sizes=("amount", "fraction", "volatility")):
    n = draw(st.integers(0, 30))
    ets = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    dur = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    ret = draw(st.lists(st.floats(-10_000, 5_000, allow_nan=False), min_size=n, max_size=n))
    vol = draw(st.lists(st.one_of(st.just(math.nan), st.floats(1e-4, 0.1)), min_size=n,
                        max_size=n))
    callers = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    kind = draw(st.sampled_from(sizes))
    size = {"amount": {"amount": draw(st.floats(1, 5_000))},
            "fraction": {"fraction": draw(st.floats(0.01, 1.0))},
            "volatility": {"volatility": {"target_bps": draw(st.floats(1, 500)),
                                          "fraction": draw(st.floats(0.01, 1.0))}}}[kind]
    cfg = {"capital": draw(st.floats(1_000, 1e6)), "size": size,
           "max_concurrent": draw(st.one_of(st.none(), st.integers(1, 5))),
           "compound": draw(st.booleans())}
    return ets, [e + d for e, d in zip(ets, dur)], ret, vol, callers, cfg


@settings(max_examples=300, deadline=None)
@given(trades_and_config(), st.booleans())
def test_kernel_equals_reference(case, tie_by_caller):
    ets, xts, ret, vol, callers, cfg = case
    res = check_against_reference(ets, xts, ret, cfg, vol=vol,
                                  callers=callers if tie_by_caller else None)
    assert int(res.taken.sum()) + res.skipped == len(ets)


@settings(max_examples=100, deadline=None)
@given(trades_and_config())
def test_by_caller_equals_reference_per_caller_and_pooled(case):
    ets, xts, ret, vol, callers, cfg = case
    out = portfolio_by_caller(np.array(callers, dtype=str), np.array(ets, dtype=np.int64),
                              np.array(xts, dtype=np.int64), np.array(ret), cfg,
                              vol=np.array(vol))
    assert [name for name, _, _ in out] == sorted(set(callers)) + [None]
    for name, res, metrics in out:
        rows = [i for i, c in enumerate(callers) if name is None or c == name]
        taken, _, _, points = reference([ets[i] for i in rows], [xts[i] for i in rows],
                                             [ret[i] for i in rows], cfg,
                                             [vol[i] for i in rows],
                                             [callers[i] for i in rows])
        assert res.taken.tolist() == taken
        np.testing.assert_allclose(res.equity, [p[1] for p in points], rtol=1e-9, atol=1e-6)
        assert metrics["trades_taken"] == sum(taken)


@settings(max_examples=200, deadline=None)
@given(trades_and_config(sizes=("amount",)))
def test_fixed_amount_final_equity_identity(case):
    ets, xts, ret, _, _, cfg = case
    cfg = {**cfg, "compound": False}
    res = simulate_portfolio(np.array(ets, dtype=np.int64), np.array(xts, dtype=np.int64),
                             np.array(ret), cfg)
    a = cfg["size"]["amount"]
    expected = cfg["capital"] + sum(a * r / 1e4 for r, t in zip(ret, res.taken) if t)
    assert res.final_equity == pytest.approx(expected, rel=1e-12, abs=1e-6)
    assert int(res.taken.sum()) + res.skipped == len(ets)


@settings(max_examples=200, deadline=None)
@given(trades_and_config(sizes=("fraction",)))
def test_fraction_sizing_never_makes_equity_negative(case):
    ets, xts, ret, _, _, cfg = case
    res = simulate_portfolio(np.array(ets, dtype=np.int64), np.array(xts, dtype=np.int64),
                             np.array(ret), cfg)
    assert (res.equity >= 0).all() and (res.cash >= 0).all()
    assert (res.drawdown <= 0).all() and (res.drawdown >= -1).all()
    m = portfolio_metrics(res, np.array(ret))
    assert m["trades_taken"] + m["skipped_signals"] == len(ets)
    assert m["max_drawdown"] <= 0
