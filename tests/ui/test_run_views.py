"""The pages' data API (quantbot.analysis.run_detail / compare_many / caller_overview) on
real runs, each number against an independent computation from the Parquet files."""

# ruff: noqa: F811 (the imported fixture ``demo`` is named as a test argument)
from __future__ import annotations

import json
import shlex
import shutil
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from quantbot.analysis import caller_overview, compare_many, run_detail
from quantbot.errors import InvalidArgumentError, RunNotFoundError

from .page_runs import EVIL_CALLER, demo, run_folder  # noqa: F401 (demo is a fixture)


def _read(demo, run_id, rel):
    return pq.read_table(run_folder(demo["base"], run_id) / rel)


def _detail(demo, key, **kw):
    return run_detail(demo["ids"][key][:8], base_dir=demo["base"], catalog=demo["catalog"], **kw)


def test_policy_run_detail(demo):
    d = _detail(demo, "a")
    run_id = demo["ids"]["a"]
    manifest = json.loads((run_folder(demo["base"], run_id) / "run.json").read_text())
    assert d["run_id"] == run_id and d["status"] == "completed" and d["cataloged"]
    assert {a["type"]: a["state"] for a in d["artifacts"]} == dict.fromkeys(
        manifest["artifacts"], "verified")
    assert {a["type"]: (a["rows"], a["bytes"], a["sha256"]) for a in d["artifacts"]} == {
        k: (v["rows"], v["bytes"], v["sha256"]) for k, v in manifest["artifacts"].items()}
    inputs = {i["name"]: i["fingerprint"] for i in d["provenance"]["inputs"]}
    assert inputs == {k: v["fingerprint"] for k, v in manifest["parameters"]["inputs"].items()}
    assert d["provenance"]["config_hash"] == manifest["parameters"]["config_hash"]
    assert ("policy.stop_pct", 0.2) in d["parameters"]
    assert not any(k.startswith("inputs.") or k == "config_hash" for k, _ in d["parameters"])
    assert d["timing"]["total_ms"] == manifest["timing"]["total_ms"]
    assert shlex.split(d["rerun_command"]) == [
        "quantbot", "backtest", "rerun", run_id, "--base-dir", str(demo["base"]),
        "--duckdb", str(demo["catalog"])]
    # exclusions: the coverage rows of the errors artifact, counted by reason
    errors = _read(demo, run_id, "errors/errors.parquet").to_pylist()
    reasons = Counter(e["message"] for e in errors if e["phase"] == "coverage")
    assert {r["reason"]: r["calls"] for r in d["exclusions"]["by_reason"]} == dict(reasons)
    assert d["exclusions"]["total"] == sum(reasons.values()) > 0
    # per caller: every summary row, the pooled one first
    summary = _read(demo, run_id, "results/summary.parquet")
    assert len(d["per_caller"]["rows"]) == summary.num_rows
    assert d["per_caller"]["rows"][0]["caller_name"] is None
    assert EVIL_CALLER in {r["caller_name"] for r in d["per_caller"]["rows"]}


def test_chart_series_match_the_artifacts(demo):
    d = _detail(demo, "a")
    trades = _read(demo, demo["ids"]["a"], "policy/trades.parquet")
    ret = np.asarray(trades.column("realized_return_bps").to_pylist(), dtype=float)
    hist = d["charts"]["returns"]
    lo, hi = ret.min(), np.percentile(ret, 97.5)
    assert hist["edges"][0] == pytest.approx(lo) and hist["edges"][-1] == pytest.approx(hi)
    # reference: each trade's bin by arithmetic, the ones above hi in the last bin
    width = (hi - lo) / (len(hist["edges"]) - 1)
    expected = [0] * (len(hist["edges"]) - 1)
    for v in ret:
        expected[min(int((min(v, hi) - lo) / width), len(expected) - 1)] += 1
    assert hist["counts"] == expected and hist["clipped_high"] == int((ret > hi).sum())
    assert hist["median"] == pytest.approx(float(np.median(ret)))
    hold = np.asarray(trades.column("time_exposed_ms").to_pylist(), dtype=float) / 3.6e6
    assert sum(d["charts"]["hold"]["counts"]) == len(hold)
    assert d["charts"]["hold"]["median"] == pytest.approx(float(np.median(hold)))
    assert d["charts"]["mae"]["mae_bps"] == pytest.approx(
        trades.column("max_adverse_excursion_bps").to_pylist())
    equity = _read(demo, demo["ids"]["a"], "results/equity.parquet").to_pylist()
    pooled = sorted((r for r in equity if r["caller_name"] is None), key=lambda r: r["ts_ms"])
    (series,) = d["charts"]["equity"]
    assert series["equity"] == pytest.approx([r["equity"] for r in pooled])
    assert series["drawdown"] == pytest.approx([r["drawdown"] for r in pooled])
    assert min(series["drawdown"]) <= 0


def test_frontier_pareto_set_by_brute_force(demo):
    d = _detail(demo, "full")
    f = d["charts"]["frontier"]
    frontier = _read(demo, demo["ids"]["full"], "results/frontier.parquet").to_pylist()
    pooled = [r for r in frontier if r["caller_name"] == "*"]
    assert f["caller_name"] == "*" and len(f["points"]) == len(pooled) == 6
    assert f["risk"] == "stop_out_rate" and f["score"] == "objective_score" and f["has_validation"]

    def dominated(p):
        return any(q["stop_out_rate"] <= p["stop_out_rate"]
                   and q["objective_score"] >= p["objective_score"]
                   and (q["stop_out_rate"] < p["stop_out_rate"]
                        or q["objective_score"] > p["objective_score"]) for q in pooled)

    assert {p["policy_id"] for p in f["points"] if p["on_front"]} == {
        p["policy_id"] for p in pooled if not dominated(p)}
    by_id = {r["policy_id"]: r for r in pooled}
    for p in f["points"]:
        assert p["validation_score"] == pytest.approx(by_id[p["policy_id"]]
                                                      ["validation_objective_score"])
        assert p["params"] == {k: v for k, v in json.loads(by_id[p["policy_id"]]["policy_params"])
                               .items() if k != "kind"}
    assert f["param_names"] == ["max_hold_ms", "stop_pct", "take_profit_pct"]
    assert {s["split"] for s in d["charts"]["equity"]} == {"train", "validation"}
    assert d["headline"]["split"] == "validation"


def test_damaged_artifact_is_a_mismatch_and_left_out(demo, tmp_path):
    base = tmp_path / "runs"
    src = run_folder(demo["base"], demo["ids"]["b"])
    dst = base / src.parent.name / src.name
    shutil.copytree(src, dst)
    trades = dst / "policy" / "trades.parquet"
    data = bytearray(trades.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    trades.write_bytes(bytes(data))
    (dst / "results" / "equity.parquet").unlink()
    d = run_detail(demo["ids"]["b"], base_dir=base, catalog=None)
    states = {a["type"]: a["state"] for a in d["artifacts"]}
    assert states["trades"] == "mismatch" and states["equity"] == "missing"
    assert states["summary"] == states["alerts"] == "verified"
    assert "returns" not in d["charts"] and "equity" not in d["charts"]


def test_failed_run_shows_its_error(tmp_path):
    from qbtest import make_run

    run = make_run(tmp_path / "runs", fail=True)
    d = run_detail(run.run_id, base_dir=tmp_path / "runs", catalog=None)
    assert d["status"] == "failed"
    assert d["error"]["type"] == "RuntimeError" and d["error"]["message"] == "boom"


def test_unknown_and_bad_refs(demo):
    with pytest.raises(RunNotFoundError):
        run_detail("deadbeef", base_dir=demo["base"], catalog=demo["catalog"])


def test_compare_many_deltas_and_differences(demo):
    ids = demo["ids"]
    c = compare_many([ids["a"], ids["b"][:8], ids["full"]], base_dir=demo["base"],
                     catalog=demo["catalog"])
    assert [r["run_id"] for r in c["runs"]] == [ids["a"], ids["b"], ids["full"]]
    rows = {p["key"]: p for p in c["parameters"]}
    assert rows["policy.stop_pct"]["values"] == [0.2, 0.3, None] and rows["policy.stop_pct"]["differs"]
    assert not rows["taker_fee_bps"]["differs"] and "config_hash" not in rows
    # pooled metrics: each run's pooled summary row (validation for the full run)
    pooled = []
    for key in ("a", "b", "full"):
        summary = _read(demo, ids[key], "results/summary.parquet").to_pylist()
        rows_ = [r for r in summary if r["caller_name"] in (None, "*")]
        pooled.append(next((r for r in rows_ if r["split"] == "validation"), rows_[0]))
    metrics = {m["metric"]: m for m in c["metrics"]}
    med = np.array([p["median_return_bps"] for p in pooled])
    assert metrics["median_return_bps"]["values"] == pytest.approx(med.tolist())
    assert metrics["median_return_bps"]["deltas"] == pytest.approx((med - med[0]).tolist())
    # per caller deltas against run A, from the summaries directly
    per = {r["caller_name"]: r for r in c["per_caller"]["trades_count"]}
    for caller, row in per.items():
        counts = []
        for key in ("a", "b", "full"):
            summary = _read(demo, ids[key], "results/summary.parquet").to_pylist()
            mine = [r for r in summary if r["caller_name"] == caller]
            pick = next((r for r in mine if r["split"] == "validation"), mine[0] if mine else None)
            counts.append(pick["trades_count"] if pick else None)
        assert row["values"] == counts
        assert row["deltas"] == [None if v is None or counts[0] is None else v - counts[0]
                                 for v in counts]
    # return histograms share their bins
    assert len({tuple(h["edges"]) for h in c["returns"]}) == 1
    assert [h["n"] for h in c["returns"]] == [
        _read(demo, ids[k], "policy/trades.parquet").num_rows if k != "full" else
        sum(1 for r in _read(demo, ids[k], "policy/trades.parquet").to_pylist()
            if r["policy_id"] == pooled[2]["policy_id"]) for k in ("a", "b", "full")]


@pytest.mark.parametrize("count", [1, 11])
def test_compare_many_needs_2_to_10_runs(demo, count):
    refs = [demo["ids"]["a"]] * 1 if count == 1 else [f"{i:08x}" for i in range(count)]
    with pytest.raises(InvalidArgumentError, match=r"^compare takes 2 to 10 runs \(got \d+\)$"):
        compare_many(refs, base_dir=demo["base"], catalog=demo["catalog"])


def test_caller_overview_against_the_parquet_files(demo):
    o = caller_overview(demo["catalog"], period="week")
    ids = demo["ids"]
    # truth layer: the path-only and the full run measured the same calls: each counts once
    paths = _read(demo, ids["full"], "truth/paths.parquet").to_pylist()
    callers = {c["caller_name"]: c for c in o["callers"]}
    for name in {p["caller_name"] for p in paths}:
        mine = [p for p in paths if p["caller_name"] == name]
        assert callers[name]["calls"] == len(mine) and callers[name]["runs"] == 2
        assert callers[name]["hit_2x_rate"] == pytest.approx(np.mean([p["hit_2x"] for p in mine]))
        assert callers[name]["median_peak_multiple"] == pytest.approx(
            float(np.median([p["peak_multiple"] for p in mine])))
    assert EVIL_CALLER in callers
    # returns over time: every (policy, call) once, by caller and alert week
    alerts = {a["call_id"]: a for a in pq.read_table(demo["alerts"]).to_pylist()}
    seen, groups = set(), {}
    for key in ("a", "b", "full"):
        for t in _read(demo, ids[key], "policy/trades.parquet").to_pylist():
            if (t["policy_id"], t["call_id"]) in seen:
                continue
            seen.add((t["policy_id"], t["call_id"]))
            a = alerts[t["call_id"]]
            day = np.datetime64(a["alert_ts_ms"], "ms").astype("datetime64[D]")
            monday = day - ((day.astype(int) - 4) % 7)  # 1970-01-01 was a Thursday
            groups.setdefault((a["caller_name"], str(monday)), []).append(t["realized_return_bps"])
    got = {(c, p): (m, n) for c, s in o["series"].items()
           for p, m, n in zip(s["period"], s["median_return_bps"], s["trades"])}
    assert set(got) == set(groups)
    for k, vals in groups.items():
        assert got[k][0] == pytest.approx(float(np.median(vals))) and got[k][1] == len(vals)
    one = caller_overview(demo["catalog"], period="month", policy_id=o["policies"][0])
    assert one["policy_id"] == o["policies"][0] and all(
        p.endswith("-01") for s in one["series"].values() for p in s["period"])
    with pytest.raises(InvalidArgumentError, match="period must be one of day, week, month"):
        caller_overview(demo["catalog"], period="year")


def test_the_rerun_command_reproduces_the_run(demo):
    from qbtest import run_main

    args = shlex.split(_detail(demo, "b")["rerun_command"])
    assert args[:3] == ["quantbot", "backtest", "rerun"]
    proc = run_main(*args[1:], cwd=demo["root"])
    assert proc.returncode == 0, proc.stderr
    assert "reproduced: every artifact is identical" in proc.stdout


def test_compare_many_with_a_failed_run(demo, tmp_path):
    from qbtest import make_run

    base = tmp_path / "runs"
    src = run_folder(demo["base"], demo["ids"]["a"])
    shutil.copytree(src, base / src.parent.name / src.name)
    failed = make_run(base, fail=True, artifacts={"errors": []})
    c = compare_many([demo["ids"]["a"], failed.run_id], base_dir=base, catalog=None)
    assert c["runs"][1]["status"] == "failed" and c["returns"][1] is None
    assert c["equity"][1] is None
    assert all(m["values"][1] is None and m["deltas"][1] is None for m in c["metrics"])
