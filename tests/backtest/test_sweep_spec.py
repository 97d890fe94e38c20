"""The sweep spec: expansion into task keys, subsets as the flows' input options, and one-line
errors naming the JSON path, refused before any run directory exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from qbtest import assert_clean_error, run_main
from sweep_hooks import make_project

from quantbot.backtest.data.inputs import InputSpec, load_alert_inputs
from quantbot.backtest.flows.sweep import run_sweep
from quantbot.backtest.flows.sweep_spec import load_spec
from quantbot.errors import SweepSpecError

POLICY = {"kind": "fixed_stop", "stop_pct": 0.2}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep_spec")
    make_project(root)
    return root


def _spec(project: Path, **over: Any) -> dict[str, Any]:
    sample = project / "data" / "sample"
    return {"inputs": [{"alerts": str(sample / "alerts.parquet"),
                        "candles": str(sample / "candles.parquet")}],
            "run_types": ["policy"], "policies": [POLICY], **over}


def _callers(project: Path) -> list[str]:
    table = pq.read_table(project / "data" / "sample" / "alerts.parquet")
    return sorted(set(table.column("caller_name").to_pylist()))


def test_example_spec_expands_to_readable_unique_keys(project: Path) -> None:
    sweep = load_spec(project / "examples" / "sweep.json")
    callers = _callers(project)
    keys = [t.key for t in sweep.tasks]
    assert len(keys) == len(set(keys)) == 2 * len(callers) + 2 >= 20
    assert f"policy/caller={callers[0]}/fixed_stop:sl0.2:tp1" in keys
    assert keys[-2:] == ["optimization/callers_a-l/grid=small_grid",
                         "optimization/callers_m-z/grid=small_grid"]
    task = sweep.tasks[0]  # relative paths are the spec file's, made absolute
    assert task.alerts == str((project / "data" / "sample" / "alerts.parquet").resolve())
    assert sweep.tasks[-1].grid == str((project / "examples" / "small_grid.json").resolve())
    assert task.options["horizon"] == "6h" and task.options["interval"] == "1m"


def test_caller_subset_selects_exactly_that_callers_alerts(project: Path) -> None:
    sweep = load_spec(_spec(project, subsets=[{"by": "caller"}]))
    table = pq.read_table(project / "data" / "sample" / "alerts.parquet")
    assert [t.key.split("/")[1] for t in sweep.tasks] == [f"caller={c}" for c in _callers(project)]
    for task in sweep.tasks[:3]:
        caller = task.key.split("/")[1].removeprefix("caller=")
        spec = InputSpec(alerts=task.alerts, candles=task.candles,
                         alerts_query=task.options["alerts_query"])
        got = load_alert_inputs(spec)[0]
        expected = table.filter(pc.equal(table.column("caller_name"), caller))
        assert sorted(got.column("call_id").to_pylist()) == sorted(
            expected.column("call_id").to_pylist())


def test_caller_names_are_data_never_sql(tmp_path: Path, project: Path) -> None:
    """A caller named like an injection selects only its own alerts."""
    table = pq.read_table(project / "data" / "sample" / "alerts.parquet")
    names = table.column("caller_name").to_pylist()
    first = names[0]
    hostile = "o'brien' OR '1'='1"
    renamed = [hostile if n == first else n for n in names]
    table = table.set_column(table.schema.get_field_index("caller_name"), "caller_name",
                             __import__("pyarrow").array(renamed))
    pq.write_table(table, tmp_path / "alerts.parquet")
    spec = _spec(project, subsets=[{"by": "caller"}])
    spec["inputs"][0]["alerts"] = str(tmp_path / "alerts.parquet")
    sweep = load_spec(spec)
    task = next(t for t in sweep.tasks if "o'brien" in t.key)
    got = load_alert_inputs(InputSpec(alerts=task.alerts, candles=task.candles,
                                      alerts_query=task.options["alerts_query"]))[0]
    assert set(got.column("caller_name").to_pylist()) == {hostile}
    assert got.num_rows == renamed.count(hostile)


def test_month_subset_and_filter_subset(project: Path) -> None:
    sweep = load_spec(_spec(project, subsets=[{"by": "month"},
                                              {"filter": "caller_name < 'm'"}],
                            run_types=["path-only"], policies=[]))
    month, filt = sweep.tasks
    assert month.key == "path-only/month=2026-01"
    assert (month.options["date_from"], month.options["date_to"]) == ("2026-01-01", "2026-01-31")
    assert filt.key == "path-only/filter=caller_name_<_'m'"
    assert "WHERE (caller_name < 'm')" in filt.options["alerts_query"]


def test_colliding_keys_are_disambiguated_in_order(project: Path) -> None:
    sweep = load_spec(_spec(project, policies=[POLICY, json.dumps(POLICY), POLICY]))
    assert [t.key for t in sweep.tasks] == ["policy/all/fixed_stop:sl0.2",
                                            "policy/all/fixed_stop:sl0.2~2",
                                            "policy/all/fixed_stop:sl0.2~3"]


def test_options_merge_shared_input_task(project: Path) -> None:
    spec = _spec(project, options={"horizon": "6h", "taker_fee_bps": 5, "per_caller": False},
                 run_types=["path-only", "optimization"], grids=[None])
    spec["inputs"][0]["horizon"] = "3h"
    spec["tasks"] = [{"run_type": "policy", "policy": POLICY, "options": {"horizon": "2h"}}]
    path_only, opt, policy = load_spec(spec).tasks
    assert path_only.options == {"horizon": "3h"}  # no fees on a truth-layer run
    assert opt.options == {"horizon": "3h", "taker_fee_bps": 5}
    assert opt.extras == {"per_caller": False} and opt.key == "optimization/all/grid=default"
    assert policy.options["horizon"] == "2h" and policy.extras == {}


BAD = [
    ({"inputs": []}, "inputs: List should have at least 1 item"),
    ({"policies": []}, 'run_types[0]: run type policy needs "policies"'),
    ({"run_types": ["backtest"]}, "run_types[0]: unknown run type 'backtest'"),
    ({"policies": [{"kind": "nope"}]}, "policies[0]: policy.kind"),
    ({"options": {"horizon": "7x"}}, "options: horizon '7x'"),
    ({"options": {"horizn": "6h"}}, "options.horizn: unknown option"),
    ({"subsets": [{"by": "week"}]}, "subsets[0].by:"),
    ({"subsets": [{"by": "caller", "filter": "1=1"}]}, 'subsets[0]: give exactly one of "by"'),
    ({"subsets": [{"filter": "no_such_column = 1"}]}, "subsets[0]: alerts source"),
    ({"run_types": ["optimize"], "grids": [{"families": {"x": {"kind": "zzz"}}}]}, "grids[0]: grid"),
    ({"run_types": ["full"], "grids": ["missing_grid.json"]}, "grids[0]: file not found"),
    ({"tasks": [{"run_type": "policy"}]}, 'tasks[0]: a policy task needs "policy"'),
    ({"tasks": [{"run_type": "path-only", "input": 3}]}, "tasks[0].input: no input 3"),
    ({"options": {"portfolio": {"capital": -1}}}, "options.portfolio"),
    ({"extra": 1}, "extra: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("over", "message"), BAD)
def test_bad_spec_is_one_line_naming_the_json_path(tmp_path: Path, project: Path,
                                                   over: dict[str, Any], message: str) -> None:
    spec = _spec(project, **over)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(SweepSpecError) as err:
        run_sweep(path, base_dir=tmp_path / "runs")
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"sweep spec {path}: ")
    assert message in text, text
    assert not (tmp_path / "runs").exists()  # refused before any run directory


def test_missing_input_file_names_its_path(tmp_path: Path, project: Path) -> None:
    spec = _spec(project)
    spec["inputs"][0]["candles"] = "nowhere/candles.parquet"
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    proc = run_main("backtest", "sweep", "spec.json", "--base-dir", "runs", cwd=tmp_path)
    assert_clean_error(proc, contains="inputs[0].candles: file not found")
    assert not (tmp_path / "runs").exists()


def test_not_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text("{", encoding="utf-8")
    proc = run_main("backtest", "sweep", "spec.json", cwd=tmp_path)
    assert_clean_error(proc, contains="not JSON")
