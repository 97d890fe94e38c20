"""The synthetic dataset: deterministic bytes, realistic shape, every exclusion reason present."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from quantbot.backtest.data.load import load_alerts, load_candles
from quantbot.backtest.data.sample import CALLERS, write_sample_data

MIN = 60_000
DAY = 86_400_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    paths = write_sample_data(out)
    return paths


@pytest.fixture(scope="module")
def frames(sample):
    alerts_path, candles_path = sample
    alerts = pq.read_table(alerts_path)
    candles = pq.read_table(candles_path)
    by_mint = {}
    mints = candles.column("mint").to_numpy(zero_copy_only=False)
    bounds = np.flatnonzero(np.r_[True, mints[1:] != mints[:-1], True])
    ts = candles.column("ts").to_numpy()
    for a, b in zip(bounds[:-1], bounds[1:]):
        by_mint[mints[a]] = slice(a, b)
    return alerts, candles, ts, by_mint


def test_same_seed_gives_identical_bytes(sample, tmp_path):
    alerts_path, candles_path = sample
    again = write_sample_data(tmp_path / "again", seed=7)
    assert again[0].read_bytes() == alerts_path.read_bytes()
    assert again[1].read_bytes() == candles_path.read_bytes()
    other = write_sample_data(tmp_path / "other", seed=8, n_alerts=60)
    assert other[0].read_bytes() != alerts_path.read_bytes()


def test_schemas_and_counts(frames):
    alerts, candles, ts, by_mint = frames
    assert alerts.column_names == ["call_id", "mint", "caller_name", "chain", "created_at", "alert_ts_ms"]
    assert candles.column_names == ["mint", "ts", "open", "high", "low", "close", "volume"]
    assert alerts.num_rows == 500
    assert set(alerts.column("caller_name").to_pylist()) == set(CALLERS) and len(CALLERS) == 20
    t = alerts.column("alert_ts_ms").to_numpy()
    assert np.all(np.diff(t) >= 0) and t.max() - t.min() > 25 * DAY  # a month, chronological
    assert alerts.column("created_at")[0].as_py().endswith("Z")
    assert 500_000 < candles.num_rows < 900_000
    assert np.all(ts % MIN == 0)
    assert len(set(alerts.column("call_id").to_pylist())) == 500


def test_candles_cover_the_windows_and_have_memecoin_paths(frames):
    alerts, candles, ts, by_mint = frames
    close = candles.column("close").to_numpy()
    volume = candles.column("volume").to_numpy()
    assert (volume == 0).sum() > 1000  # dead tokens: flat zero-volume candles
    steps = np.diff(ts)
    assert (steps > MIN).sum() > 1000  # holes: missing minutes
    ratios = []
    for mint, t in zip(alerts.column("mint").to_pylist(), alerts.column("alert_ts_ms").to_numpy()):
        rows = by_mint.get(mint)
        if rows is None:
            continue
        window = (ts[rows] > t) & (ts[rows] <= t + DAY)
        if window.any() and close[rows][window][0] > 0:
            ratios.append(close[rows][window].max() / close[rows][window][0])
    ratios = np.array(ratios)
    assert (ratios >= 2).sum() > 30 and (ratios >= 10).sum() > 5 and (ratios < 1.1).sum() > 30


def test_every_exclusion_reason_is_built_in(frames):
    alerts, candles, ts, by_mint = frames
    close = candles.column("close").to_numpy()
    reasons = set()
    for mint, t in zip(alerts.column("mint").to_pylist(), alerts.column("alert_ts_ms").to_numpy()):
        rows = by_mint.get(mint)
        if rows is None:
            reasons.add("no_candles")
            continue
        mts = ts[rows]
        if t < mts[0]:
            reasons.add("too_new")
        entry = np.searchsorted(mts, t)
        if entry < len(mts) and close[rows][entry] <= 0:
            reasons.add("invalid_price")
        if mts[-1] < t + DAY:
            reasons.add("missing_range")
    assert reasons == {"no_candles", "too_new", "invalid_price", "missing_range"}


def test_loaders_read_the_sample(sample):
    alerts_path, candles_path = sample
    alerts = load_alerts(alerts_path)
    cs = load_candles(candles_path, alerts, interval_ms=MIN, horizon_ms=DAY, pre_window_ms=3_600_000)
    assert alerts.num_rows == 500
    absent = set(pc.unique(alerts.column("mint")).to_pylist()) - set(cs.mints)
    assert len(absent) == 2  # the no_candles mints
    assert cs.n_rows > 400_000
