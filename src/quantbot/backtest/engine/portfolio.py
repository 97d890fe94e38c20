"""Portfolio simulation over a run's trades: limited capital, sizing, concurrency, equity.

Every trade (entry_ts_ms, exit_ts_ms, realized_return_bps after fees) is a signal. The
portfolio takes it or skips it; a taken position of ``amount`` (currency) is carried at
its cost from entry to exit and its P&L, ``amount · realized_return_bps / 1e4``, is booked
at the exit (a *realised* curve, no mark-to-market: cheap enough for every policy of a grid).

Configuration (:class:`PortfolioConfig`, :func:`parse_portfolio`):

- ``capital`` (currency, > 0, default 100000): the initial cash.
- ``size``, exactly one of (default ``{"fraction": 0.01}``):
  ``{"amount": A}``: A currency per position;
  ``{"fraction": f}`` (0 < f ≤ 1): f · base;
  ``{"volatility": {"target_bps": T, "fraction": f}}``: base · min(1, f · (T / 1e4) / vol),
  where vol is the trade's volatility (``vol`` argument: the per-bar standard deviation of
  log returns before the alert, the features' ``vol_pre_alert``, dimensionless) and T is the
  same per-bar volatility in bps: a trade as volatile as the target gets f · base, a calmer
  one more, a wilder one less, never more than the whole base. ``fraction`` defaults to 0.01.
  base = the equity at entry (cash + open positions at cost) when ``compound`` is true,
  else the initial capital.
- ``max_concurrent`` (int ≥ 1, or null = unlimited): open positions at most.
- ``compound`` (default false): false sizes every position from the initial capital, so
  P&L never changes sizes; a fixed ``amount`` is the same either way.

Event order (deterministic): events are processed by time; at one time all exits come
first (a slot or cash freed at t can be reused by an entry at t), in entry order; then the
entries, ordered by (entry_ts_ms, caller, trade index) (``callers`` given) or by
(entry_ts_ms, trade index). A trade with exit == entry opens and closes at its entry, before
the next entry at that time. An entry is skipped, first matching reason counted:
``skipped_concurrency`` (max_concurrent positions already open), ``skipped_volatility``
(volatility sizing and the trade's vol is missing, NaN or ≤ 0: reported, not guessed),
``skipped_cash`` (amount > cash, or amount ≤ 0 because the equity is gone). Skipped trades
have amount 0; with a fixed amount and no compounding, final equity = capital + Σ amount ·
realized_return_bps / 1e4 over the taken trades.

Equity curve (:class:`PortfolioResult`): one point per distinct time at which a taken trade
entered or exited, the state after every event at that time: ``equity`` = cash + open
positions at cost (currency), ``cash``, ``exposure`` = open positions at cost / equity
(fraction; NaN when equity ≤ 0), ``open_positions``, ``drawdown`` = equity / running peak
− 1 (fraction ≤ 0; the peak starts at the initial capital).

Metrics (:func:`portfolio_metrics`); the span is the curve's first point .. last point
(first taken entry .. last taken exit, ms):

- ``final_equity`` (currency); ``total_return`` = final / capital − 1 (fraction).
- ``annualised_return`` = (final / capital)^(year / span) − 1, year = 365.25 days (fraction;
  null when the span is shorter than 30 days, since a few days' return compounded to a year
  is noise (1e27 for a day's +1 %), or when final ≤ 0).
- ``max_drawdown`` = min drawdown (fraction ≤ 0; 0 without trades);
  ``max_drawdown_duration_ms`` = longest time from a peak to the point that regains it, or
  to the end of the span when it is never regained (0 without a drawdown).
- ``sharpe``, ``sortino``: the equity is sampled on the calendar grid of ``period_ms``
  (multiples of period_ms since the epoch; UTC days by default) from the boundary at or
  before the span's start to the first boundary after its end, each sample being the equity
  after every event strictly before the boundary; r_k are the period returns s_{k+1}/s_k − 1.
  sharpe = mean(r) / std(r, ddof=1) · √ppy; sortino = mean(r) / √mean(min(r, 0)²) · √ppy;
  ppy = ``periods_per_year`` or 365.25 days / period_ms; risk-free rate 0. Null with fewer
  than 2 periods or a zero (or undefined) deviation.
- ``calmar`` = annualised_return / |max_drawdown| (null when either is null or 0 drawdown).
- ``exposure_time`` = share of the span with at least one open position (fraction; null
  when the span is 0).
- ``trades_taken``, ``skipped_signals`` (= concurrency + cash + volatility skips, each also
  given as ``skipped_concurrency``, ``skipped_cash``, ``skipped_volatility``): counts.
- Over the taken trades, unweighted: ``win_rate`` = share with realized_return_bps > 0;
  ``profit_factor`` = Σ positive returns / |Σ negative returns| (null without a losing trade:
  infinity is not a column value); ``avg_win_bps`` / ``avg_loss_bps`` = mean return of the
  winners / losers (bps; null when there is none). Null rates without taken trades.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quantbot.backtest.engine.summary import win_loss
from quantbot.errors import PortfolioConfigError, PortfolioInputError

YEAR_MS = 365.25 * 86_400_000
MIN_ANNUALISED_SPAN_MS = 30 * 86_400_000  # a few days' return raised to a year means nothing
DAY_MS = 86_400_000
MAX_PERIODS = 10_000_000  # sampling grid size bound (memory: 8 bytes a period)
_AMOUNT, _FRACTION, _VOLATILITY = 0, 1, 2


class VolatilityTarget(BaseModel):
    """Volatility-scaled sizing: f · base for a trade whose vol equals the target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_bps: float = Field(gt=0, allow_inf_nan=False)  # per-bar std of log returns, bps
    fraction: float = Field(0.01, gt=0, le=1)


class Size(BaseModel):
    """Position size: exactly one of amount (currency), fraction (of base), volatility."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: float | None = Field(None, gt=0, allow_inf_nan=False)
    fraction: float | None = Field(None, gt=0, le=1)
    volatility: VolatilityTarget | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Size:
        given = [k for k in ("amount", "fraction", "volatility") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of amount, fraction, volatility"
                             f" (got {', '.join(given) or 'none'})")
        return self


class PortfolioConfig(BaseModel):
    """Capital, sizing, concurrency limit and compounding of a portfolio (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capital: float = Field(100_000.0, gt=0, allow_inf_nan=False)  # currency
    size: Size = Size(fraction=0.01)
    max_concurrent: int | None = Field(None, ge=1)  # None = unlimited
    compound: bool = False


def parse_portfolio(obj: str | dict[str, Any] | PortfolioConfig | None) -> PortfolioConfig:
    """A PortfolioConfig from JSON text or a dict (None = defaults); raises
    PortfolioConfigError as one line ``portfolio.<key>: <message>``."""
    if isinstance(obj, PortfolioConfig):
        return obj
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as exc:
            raise PortfolioConfigError(
                f"portfolio: not valid JSON ({exc.msg} at char {exc.pos})") from None
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise PortfolioConfigError(f"portfolio: must be a JSON object (got {type(obj).__name__})")
    try:
        return PortfolioConfig(**obj)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = "".join(f".{p}" for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        got = repr(err.get("input"))
        tail = "" if err["type"] in ("value_error", "missing") else f" (got {got})"
        raise PortfolioConfigError(f"portfolio{where}: {msg}{tail}") from None


@dataclass(frozen=True)
class PortfolioResult:
    """Which trades were taken, their sizes, and the realised equity curve (docstring)."""

    capital: float
    taken: np.ndarray  # bool, per trade (trade order)
    amount: np.ndarray  # float64 currency per trade, 0 when skipped
    skipped_concurrency: int
    skipped_cash: int
    skipped_volatility: int
    ts_ms: np.ndarray  # int64, curve points
    equity: np.ndarray
    cash: np.ndarray
    exposure: np.ndarray
    open_positions: np.ndarray  # int64
    drawdown: np.ndarray

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.capital

    @property
    def skipped(self) -> int:
        return self.skipped_concurrency + self.skipped_cash + self.skipped_volatility

    def curve(self) -> dict[str, np.ndarray]:
        """The curve as columns (the equity artifact's order, timestamps in ms)."""
        return {"ts_ms": self.ts_ms, "equity": self.equity, "cash": self.cash,
                "exposure": self.exposure, "open_positions": self.open_positions,
                "drawdown": self.drawdown}


def _inputs(entry_ts_ms: Any, exit_ts_ms: Any, realized_return_bps: Any,
            vol: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Checked int64/float64 arrays; one-line PortfolioInputError naming the first bad row."""
    ets = np.asarray(entry_ts_ms, dtype=np.int64)
    xts = np.asarray(exit_ts_ms, dtype=np.int64)
    ret = np.asarray(realized_return_bps, dtype=np.float64)
    arrays = {"exit_ts_ms": xts, "realized_return_bps": ret}
    if vol is not None:
        vol = np.asarray(vol, dtype=np.float64)
        arrays["vol"] = vol
    for name, arr in arrays.items():
        if arr.shape != ets.shape or arr.ndim != 1:
            raise PortfolioInputError(f"portfolio: {name} has shape {arr.shape}, entry_ts_ms "
                                      f"{ets.shape} (one value per trade)")
    bad = np.flatnonzero(~np.isfinite(ret))
    if len(bad):
        raise PortfolioInputError(f"portfolio: trade {bad[0]}: realized_return_bps is "
                                  f"{ret[bad[0]]} (a number is required)")
    bad = np.flatnonzero(xts < ets)
    if len(bad):
        raise PortfolioInputError(f"portfolio: trade {bad[0]}: exit_ts_ms {xts[bad[0]]} is "
                                  f"before entry_ts_ms {ets[bad[0]]}")
    return ets, xts, ret, vol


def _entry_order(ets: np.ndarray, callers: Any) -> np.ndarray:
    """Trade indices by (entry_ts_ms, caller, trade index) — stable sorts keep the index.
    ``callers`` are names, or integer codes that sort like the names."""
    if callers is None:
        return np.argsort(ets, kind="stable")
    code = np.asarray(callers)
    if code.shape != ets.shape:
        raise PortfolioInputError(f"portfolio: callers has shape {code.shape}, entry_ts_ms "
                                  f"{ets.shape} (one value per trade)")
    if code.dtype.kind not in "iu":
        code = np.unique(code.astype(str), return_inverse=True)[1].ravel()
    return np.lexsort((code, ets))


def simulate_portfolio(entry_ts_ms: np.ndarray, exit_ts_ms: np.ndarray,
                       realized_return_bps: np.ndarray,
                       config: PortfolioConfig | dict[str, Any] | str | None = None, *,
                       vol: np.ndarray | None = None,
                       callers: np.ndarray | Sequence[str] | None = None) -> PortfolioResult:
    """Simulate the portfolio over trades given in trade order (module docstring).

    ``vol`` (per trade, NaN = unknown) is required by volatility sizing; ``callers`` (names,
    or integer codes in the names' order) only orders entries at the same time (pooled
    portfolios of several callers).
    """
    cfg = parse_portfolio(config)
    ets, xts, ret, vol = _inputs(entry_ts_ms, exit_ts_ms, realized_return_bps, vol)
    size = cfg.size
    if size.volatility is not None and vol is None:
        raise PortfolioConfigError("portfolio.size.volatility: needs each trade's volatility "
                                   "(vol_pre_alert); none was given")
    if size.amount is not None:
        mode, param, target = _AMOUNT, size.amount, 0.0
    elif size.fraction is not None:
        mode, param, target = _FRACTION, size.fraction, 0.0
    else:
        mode, param, target = _VOLATILITY, size.volatility.fraction, size.volatility.target_bps
    order = _entry_order(ets, callers)
    e_ets, e_xts, e_ret = ets[order], xts[order], ret[order]
    e_vol = vol[order] if vol is not None else np.zeros(0)
    exit_order = np.argsort(e_xts, kind="stable")  # ties: in entry order
    n = len(ets)
    e_taken = np.zeros(n, dtype=np.bool_)
    e_amount = np.zeros(n, dtype=np.float64)
    pts = np.empty(2 * n, dtype=np.int64)
    peq, pcash, pcost = (np.empty(2 * n) for _ in range(3))
    popen = np.empty(2 * n, dtype=np.int64)
    counts = np.zeros(3, dtype=np.int64)
    m = _run(e_ets, e_xts, e_ret, e_vol, exit_order, mode, float(param), target / 1e4,
             float(cfg.capital), cfg.max_concurrent or 0, cfg.compound,
             e_taken, e_amount, pts, peq, pcash, pcost, popen, counts)
    taken = np.empty(n, dtype=np.bool_)
    taken[order] = e_taken
    amount = np.empty(n, dtype=np.float64)
    amount[order] = e_amount
    equity = peq[:m]
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = np.where(equity > 0, pcost[:m] / equity, np.nan)
    peak = np.maximum.accumulate(np.maximum(equity, cfg.capital))
    return PortfolioResult(
        capital=float(cfg.capital), taken=taken, amount=amount,
        skipped_concurrency=int(counts[0]), skipped_cash=int(counts[1]),
        skipped_volatility=int(counts[2]), ts_ms=pts[:m].copy(), equity=equity.copy(),
        cash=pcash[:m].copy(), exposure=exposure, open_positions=popen[:m].copy(),
        drawdown=equity / peak - 1.0)


@njit(cache=True, nogil=True)
def _run(ets, xts, ret, vol, exit_order, mode, param, target, capital, max_conc, compound,
         taken, amount, pts, peq, pcash, pcost, popen, counts):  # pragma: no cover - numba
    """The event loop: merges entries (already in entry order) with exits (``exit_order``),
    exits first at equal times; writes one curve point per time with a taken event; returns
    the number of points. counts = [concurrency, cash, volatility] skips."""
    n = len(ets)
    i = 0
    j = 0
    m = 0
    cash = capital
    cost = 0.0
    n_open = 0
    cur_ts = 0
    dirty = False  # a taken trade's event happened at cur_ts
    while i < n or j < n:
        is_exit = False
        if j < n:
            k = exit_order[j]
            if xts[k] == ets[k]:  # zero-duration trades close at their entry
                j += 1
                continue
            is_exit = i >= n or xts[k] <= ets[i]
        t = xts[exit_order[j]] if is_exit else ets[i]
        if t != cur_ts and dirty:
            m = _point(pts, peq, pcash, pcost, popen, m, cur_ts, cash, cost, n_open)
            dirty = False
        cur_ts = t
        if is_exit:
            k = exit_order[j]
            j += 1
            if taken[k]:
                cash += amount[k] * (1.0 + ret[k] / 1e4)
                n_open -= 1
                cost = cost - amount[k] if n_open > 0 else 0.0
                dirty = True
            continue
        k = i
        i += 1
        if max_conc > 0 and n_open >= max_conc:
            counts[0] += 1
            continue
        base = cash + cost if compound else capital
        if mode == 0:
            a = param
        elif mode == 1:
            a = param * base
        else:
            v = vol[k]
            if not (v > 0.0) or not np.isfinite(v):
                counts[2] += 1
                continue
            a = base * min(1.0, param * target / v)
        if not (a > 0.0) or a > cash:
            counts[1] += 1
            continue
        taken[k] = True
        amount[k] = a
        dirty = True
        if xts[k] == ets[k]:
            cash += a * ret[k] / 1e4
        else:
            cash -= a
            cost += a
            n_open += 1
    if dirty:
        m = _point(pts, peq, pcash, pcost, popen, m, cur_ts, cash, cost, n_open)
    return m


@njit(cache=True, nogil=True, inline="always")
def _point(pts, peq, pcash, pcost, popen, m, ts, cash, cost, n_open):  # pragma: no cover
    """Write the curve point ``m`` (the state after every event at ``ts``); the next index."""
    pts[m] = ts
    peq[m] = cash + cost
    pcash[m] = cash
    pcost[m] = cost
    popen[m] = n_open
    return m + 1


def _maybe(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _drawdown_duration_ms(ts: np.ndarray, drawdown: np.ndarray) -> int:
    """Longest peak → recovery (or → end) time: for every point after an underwater point,
    its time minus the time of the last point at the peak (the curve's start before any)."""
    if len(ts) < 2:
        return 0
    at_peak = drawdown >= 0
    idx = np.where(at_peak, np.arange(len(ts)), 0)
    peak_ts = ts[np.maximum.accumulate(idx)]
    under = ~at_peak[:-1]
    if not under.any():
        return 0
    return int((ts[1:][under] - peak_ts[:-1][under]).max())


def _period_returns(result: PortfolioResult, period_ms: int) -> np.ndarray:
    """Returns of the equity sampled on the calendar grid of period_ms (module docstring)."""
    ts = result.ts_ms
    first = (ts[0] // period_ms) * period_ms
    last = (ts[-1] // period_ms + 1) * period_ms
    if (last - first) // period_ms > MAX_PERIODS:
        raise PortfolioConfigError(f"portfolio.period_ms: {period_ms} ms makes "
                                   f"{(last - first) // period_ms} periods over the trades' "
                                   f"span (at most {MAX_PERIODS:,}); use a longer period")
    grid = np.arange(first, last + 1, period_ms, dtype=np.int64)
    at = np.searchsorted(ts, grid, side="left") - 1
    samples = np.where(at >= 0, result.equity[np.maximum(at, 0)], result.capital)
    with np.errstate(divide="ignore", invalid="ignore"):
        return samples[1:] / samples[:-1] - 1.0


def _sharpe_sortino(r: np.ndarray, ppy: float) -> tuple[float | None, float | None]:
    if len(r) < 2 or not np.isfinite(r).all():
        return None, None
    mean = r.mean()
    sd = r.std(ddof=1)
    down = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    scale = np.sqrt(ppy)
    return (float(mean / sd * scale) if sd > 0 else None,
            float(mean / down * scale) if down > 0 else None)


def _trade_stats(ret: np.ndarray) -> dict[str, float | None]:
    """win_rate, profit_factor, avg_win_bps, avg_loss_bps over the taken trades' returns
    (the summary's definitions, :func:`~quantbot.backtest.engine.summary.win_loss`)."""
    return {k: (None if np.isnan(v) else float(v)) for k, v in win_loss(ret).items()}


def portfolio_metrics(result: PortfolioResult, realized_return_bps: np.ndarray, *,
                      period_ms: int = DAY_MS,
                      periods_per_year: float | None = None) -> dict[str, float | int | None]:
    """The portfolio's summary metrics (definitions and units: module docstring)."""
    if period_ms <= 0:
        raise PortfolioConfigError(f"portfolio.period_ms: must be > 0 (got {period_ms})")
    if periods_per_year is not None and not periods_per_year > 0:
        raise PortfolioConfigError(
            f"portfolio.periods_per_year: must be > 0 (got {periods_per_year})")
    ret = np.asarray(realized_return_bps, dtype=np.float64)[result.taken]
    final = result.final_equity
    out: dict[str, float | int | None] = {
        "final_equity": final, "total_return": final / result.capital - 1.0,
        "annualised_return": None, "max_drawdown": 0.0, "max_drawdown_duration_ms": 0,
        "sharpe": None, "sortino": None, "calmar": None, "exposure_time": None,
        "trades_taken": int(result.taken.sum()), "skipped_signals": result.skipped,
        "skipped_concurrency": result.skipped_concurrency,
        "skipped_cash": result.skipped_cash, "skipped_volatility": result.skipped_volatility,
    }
    out.update(_trade_stats(ret))
    ts = result.ts_ms
    if not len(ts):
        return out
    span = int(ts[-1] - ts[0])
    out["max_drawdown"] = float(min(result.drawdown.min(), 0.0))
    out["max_drawdown_duration_ms"] = _drawdown_duration_ms(ts, result.drawdown)
    if span > 0:
        if final > 0 and span >= MIN_ANNUALISED_SPAN_MS:
            with np.errstate(over="ignore"):  # a tiny span can annualise to infinity: null
                growth = np.float64(final / result.capital) ** (YEAR_MS / span)
            out["annualised_return"] = _maybe(growth - 1.0)
        held = np.diff(ts)[result.open_positions[:-1] > 0].sum()
        out["exposure_time"] = float(held / span)
    ppy = periods_per_year if periods_per_year is not None else YEAR_MS / period_ms
    out["sharpe"], out["sortino"] = _sharpe_sortino(_period_returns(result, period_ms), ppy)
    if out["annualised_return"] is not None and out["max_drawdown"] < 0:
        out["calmar"] = out["annualised_return"] / abs(out["max_drawdown"])
    return out


def portfolio_by_caller(callers: np.ndarray | Sequence[str], entry_ts_ms: np.ndarray,
                        exit_ts_ms: np.ndarray, realized_return_bps: np.ndarray,
                        config: PortfolioConfig | dict[str, Any] | str | None = None, *,
                        vol: np.ndarray | None = None, period_ms: int = DAY_MS,
                        periods_per_year: float | None = None,
                        ) -> list[tuple[str | None, PortfolioResult, dict[str, Any]]]:
    """One portfolio per caller (sorted by name, each with the whole config: its own
    capital), then the pooled portfolio of all trades (caller None); per-trade arrays of a
    caller's result follow that caller's trades in trade order."""
    cfg = parse_portfolio(config)
    ets, xts, ret, vol = _inputs(entry_ts_ms, exit_ts_ms, realized_return_bps, vol)
    names = np.asarray(callers).astype(str)
    if names.shape != ets.shape:
        raise PortfolioInputError(f"portfolio: callers has shape {names.shape}, entry_ts_ms "
                                  f"{ets.shape} (one value per trade)")
    uniq, code = np.unique(names, return_inverse=True)
    code = code.ravel()
    by_code = np.argsort(code, kind="stable")  # each caller's trades, in trade order
    bounds = np.searchsorted(code[by_code], np.arange(len(uniq) + 1))
    out: list[tuple[str | None, PortfolioResult, dict[str, Any]]] = []
    for c, name in enumerate(uniq):
        sel = by_code[bounds[c]:bounds[c + 1]]
        res = simulate_portfolio(ets[sel], xts[sel], ret[sel], cfg,
                                 vol=vol[sel] if vol is not None else None)
        out.append((str(name), res, portfolio_metrics(res, ret[sel], period_ms=period_ms,
                                                      periods_per_year=periods_per_year)))
    pooled = simulate_portfolio(ets, xts, ret, cfg, vol=vol, callers=code)
    out.append((None, pooled, portfolio_metrics(pooled, ret, period_ms=period_ms,
                                                periods_per_year=periods_per_year)))
    return out
