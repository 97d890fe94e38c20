"""Portfolio equity against backtesting.py on its bundled GOOG daily bars.

Alignment (what makes the two comparable):

- Strategy: SMA(10) / SMA(20) crossover, long only, one position at a time (buy on a cross
  up, close on a cross down), backtesting.py's default fills (``trade_on_close=False``:
  orders fill at the next bar's open), ``commission=0``, ``finalize_trades=True`` (the
  position still open at the end closes at the last close and counts as a trade).
- Sizing: backtesting.py's ``buy()`` invests all the cash in *whole* shares; quantbot's
  equivalent is ``{"size": {"fraction": 1}, "compound": true}``. The cash left over by the
  rounding to whole shares is the only difference; with ``cash = 1e12`` it is below one
  share price (≈ 1e-9 of the equity), so figures agree far inside the 1e-6 tolerance.
- Trades: quantbot's trades are backtesting.py's own ``stats._trades`` (EntryTime, ExitTime,
  ReturnPct · 1e4 bps). Exits and entries never share a bar in this strategy.
- Equity: backtesting.py marks to market every bar; quantbot's curve is realised (P&L booked
  at exit). They coincide at every exit bar (the position is closed at that bar's open, so
  backtesting.py's equity at its close is cash), which is where they are compared.
- Win rate (PnL > 0 ⇔ ReturnPct > 0) and profit factor (Σ positive ReturnPct /
  |Σ negative ReturnPct|, unweighted) use the same conventions in both.
"""

from __future__ import annotations

import numpy as np
import pytest
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import GOOG, SMA

from quantbot.backtest.engine.portfolio import portfolio_metrics, simulate_portfolio

CASH = 1e12
REL = 1e-6


class SmaCross(Strategy):
    """Long on a 10/20 SMA cross up, flat on the cross down."""

    def init(self) -> None:
        self.fast = self.I(SMA, self.data.Close, 10)
        self.slow = self.I(SMA, self.data.Close, 20)

    def next(self) -> None:
        if crossover(self.fast, self.slow):
            self.buy()
        elif crossover(self.slow, self.fast):
            self.position.close()


def _ms(index) -> np.ndarray:
    return np.asarray(index, dtype="datetime64[ms]").astype(np.int64)


@pytest.fixture(scope="module")
def both():
    stats = Backtest(GOOG, SmaCross, cash=CASH, commission=0, finalize_trades=True).run()
    trades = stats._trades
    ret = trades["ReturnPct"].to_numpy() * 1e4
    res = simulate_portfolio(_ms(trades["EntryTime"]), _ms(trades["ExitTime"]), ret,
                             {"capital": CASH, "size": {"fraction": 1}, "compound": True})
    return stats, trades, ret, res, portfolio_metrics(res, ret)


def test_trades_and_final_equity_match(both):
    stats, trades, _, res, m = both
    assert len(trades) > 20 and res.taken.all()
    assert m["trades_taken"] == stats["# Trades"] and m["skipped_signals"] == 0
    assert m["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=REL)
    assert m["total_return"] * 100 == pytest.approx(stats["Return [%]"], rel=REL)


def test_equity_at_every_exit_matches(both):
    stats, trades, _, res, _ = both
    curve = stats._equity_curve["Equity"]
    bt_at_exit = curve.loc[trades["ExitTime"]].to_numpy()
    ours = res.equity[np.searchsorted(res.ts_ms, _ms(trades["ExitTime"]))]
    np.testing.assert_allclose(ours, bt_at_exit, rtol=REL)
    # The realised drawdown is backtesting.py's equity sampled at the exits, peak included.
    peak = np.maximum.accumulate(np.maximum(bt_at_exit, CASH))
    assert both[4]["max_drawdown"] == pytest.approx((bt_at_exit / peak - 1).min(), rel=REL)


def test_win_rate_and_profit_factor_match(both):
    stats, trades, _, _, m = both
    assert m["win_rate"] * 100 == pytest.approx(stats["Win Rate [%]"], rel=REL)
    assert m["win_rate"] == pytest.approx((trades["PnL"] > 0).mean(), rel=REL)
    assert m["profit_factor"] == pytest.approx(stats["Profit Factor"], rel=REL)
