"""The flow commands' defaults and help come from the API's fields (FlowParams,
OptimizerConfig), so the CLI and the Python API cannot disagree."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from quantbot.backtest import FlowParams, OptimizerConfig
from quantbot.cli import cli
from quantbot.durations import format_duration

COMMANDS = (("run", "path-only"), ("run", "policy"), ("run", "full"), ("optimize",), ("rerun",))


def _command(path: tuple[str, ...]):
    group = cli.commands["backtest"]
    for name in path:
        group = group.commands[name] if hasattr(group, "commands") else group
    return group


def _params(path):
    return {p.name: p for p in _command(path).params}


@pytest.mark.parametrize("path", COMMANDS[:4])
def test_flow_param_defaults_and_help_from_flowparams(path):
    params = _params(path)
    for f in dataclasses.fields(FlowParams):
        if f.name in ("taker_fee_bps", "slippage_bps") and path == ("run", "path-only"):
            assert f.name not in params  # path-only runs take no fees
            continue
        assert params[f.name].default == f.default, (path, f.name)
        assert params[f.name].help == f.metadata["help"], (path, f.name)


@pytest.mark.parametrize("path", [("optimize",), ("run", "full")])
def test_optimizer_defaults_and_help_from_the_config_model(path):
    params = _params(path)
    for name, field in OptimizerConfig.model_fields.items():
        option = params[name]
        default = field.default
        in_ms = name.endswith("_ms") and not isinstance(default, str)
        expected = format_duration(default) if in_ms else default
        assert option.default == expected and option.help == field.description, name
    text = CliRunner().invoke(cli, ["backtest", *path, "--help"]).output
    # 48 h on 1m bars, and as many bars on any other interval
    assert "--max-avg-time-exposed DURATION" in text and "[default: 2880bars]" in text


def test_every_run_writing_command_has_the_same_sync_option():
    helps = {path: _params(path)["sync"].help for path in COMMANDS}
    assert len(set(helps.values())) == 1, helps
