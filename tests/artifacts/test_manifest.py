"""The run.json model: validation, deep_merge, config_hash, artifact paths."""

from __future__ import annotations

import copy
import json

import pytest

from quantbot.artifacts.schema.manifest import (
    RunManifest,
    canonical_json,
    config_hash,
    deep_merge,
    parse_manifest,
    validate_manifest,
)
from quantbot.errors import ManifestError

RID = "0f8fad5b-d9cb-469f-a165-70867728950e"
SHA = "a" * 64


def minimal(**over):
    data = {"run_id": RID, "run_type": "policy", "status": "running",
            "created_at": "2024-01-01T00:00:00.000Z"}
    data.update(over)
    return data


def test_minimal_manifest_gets_defaults():
    m = validate_manifest(minimal())
    d = m.to_dict()
    assert d["dataset"] == {"interval": "", "calls_count": 0}
    assert d["schema_version"] == {"manifest": "1.1.0", "artifacts": "1.2.0"}
    assert d["artifacts"] == {}
    assert "error" not in d and "timing" not in d


@pytest.mark.parametrize("field,value", [
    ("run_type", "nope"), ("status", "done"), ("run_id", "../x"), ("created_at", None),
    ("git_dirty", "maybe"), ("dataset", {"calls_count": -1}),
    ("artifacts", {"trades": {"rows": -1, "path": "policy/trades.parquet", "bytes": 1, "sha256": SHA}}),
    ("artifacts", {"trades": {"rows": 1, "path": "policy/trades.parquet", "bytes": 1, "sha256": "xyz"}}),
    ("timing", {"total_ms": "slow"}),
    ("bogus_top_level", 1),
])
def test_validation_errors_name_the_field(field, value):
    with pytest.raises(ManifestError) as err:
        validate_manifest(minimal(**{field: value}), "somewhere/run.json")
    msg = str(err.value)
    assert msg.startswith("somewhere/run.json: invalid manifest: ")
    assert field in msg


def test_missing_required_field_is_named():
    data = minimal()
    del data["run_type"]
    with pytest.raises(ManifestError, match="run_type"):
        validate_manifest(data)


@pytest.mark.parametrize("kind,path", [
    ("alerts", "inputs/alerts.parquet"), ("paths", "truth/paths.parquet"),
    ("features", "features/features.parquet"), ("trades", "policy/trades.parquet"),
    ("summary", "results/summary.parquet"), ("frontier", "results/frontier.parquet"),
    ("errors", "errors/errors.parquet"),
])
def test_artifact_paths_are_pinned_per_type(kind, path):
    entry = {"rows": 1, "path": path, "bytes": 10, "sha256": SHA}
    assert validate_manifest(minimal(artifacts={kind: entry})).artifacts[kind].path == path
    for bad in ("../../etc/passwd", "/abs/" + path, path.replace(".parquet", ".csv"),
                "results/other.parquet"):
        with pytest.raises(ManifestError, match=kind):
            validate_manifest(minimal(artifacts={kind: {**entry, "path": bad}}))


def test_unknown_artifact_type_in_manifest_is_invalid():
    entry = {"rows": 1, "path": "x/y.parquet", "bytes": 10, "sha256": SHA}
    with pytest.raises(ManifestError, match="unknown artifact type"):
        validate_manifest(minimal(artifacts={"candles": entry}))


def test_unknown_parameter_keys_are_kept_and_round_trip():
    params = {"strategy_id": "s", "policy_id": "p", "custom": {"nested": [1, 2, {"x": None}]},
              "threshold": 0.25, "names": ["a", "b"]}
    m = validate_manifest(minimal(parameters=params))
    again = parse_manifest(m.to_json())
    assert again.to_dict()["parameters"] == params
    assert again == m


def test_dataset_from_alias_round_trips():
    m = validate_manifest(minimal(dataset={"from": "2024-01-01", "to": "2024-02-01",
                                           "interval": "1m", "calls_count": 3, "source": "x"}))
    assert m.dataset.from_ == "2024-01-01"
    d = json.loads(m.to_json())
    assert d["dataset"] == {"from": "2024-01-01", "to": "2024-02-01", "interval": "1m",
                            "calls_count": 3, "source": "x"}


def test_parse_manifest_errors():
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest('{"run_id": ', "r/run.json")
    with pytest.raises(ManifestError, match="expected a JSON object"):
        parse_manifest("[1, 2]", "r/run.json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(b"\xff\xfe\x00garbage", "r/run.json")


def test_deep_merge_merges_nested_and_does_not_mutate():
    base = {"a": 1, "d": {"x": 1, "y": {"p": 1}}, "l": [1]}
    update = {"b": 2, "d": {"y": {"q": 2}, "z": 3}, "l": [2]}
    snapshot = copy.deepcopy(base)
    out = deep_merge(base, update)
    assert out == {"a": 1, "b": 2, "d": {"x": 1, "y": {"p": 1, "q": 2}, "z": 3}, "l": [2]}
    assert base == snapshot
    assert deep_merge({"d": {"x": 1}}, {"d": 5}) == {"d": 5}
    assert deep_merge({"d": 5}, {"d": {"x": 1}}) == {"d": {"x": 1}}


def test_config_hash_is_stable_and_order_independent():
    a = {"b": 1, "a": {"y": 2, "x": [1, 2]}, "policy_id": "p"}
    b = {"policy_id": "p", "a": {"x": [1, 2], "y": 2}, "b": 1}
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 64
    # the hash itself and None values do not feed the hash
    assert config_hash({**a, "config_hash": "zzz", "strategy_id": None}) == config_hash(a)
    assert config_hash({**a, "b": 2}) != config_hash(a)
    import hashlib
    assert config_hash(a) == hashlib.sha256(canonical_json(a).encode()).hexdigest()


def test_canonical_json_rejects_nan():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_config_hash_always_present_in_written_manifests(base_dir):
    from quantbot.artifacts import create_run_directory, read_manifest

    run = create_run_directory("policy", base_dir=base_dir, durable=False, git=False)
    empty_hash = config_hash({})
    assert read_manifest(run.path).parameters.config_hash == empty_hash
    run.update_manifest(parameters={"alpha": 1})
    on_disk = read_manifest(run.path).parameters
    assert on_disk.config_hash == config_hash({"alpha": 1}) != empty_hash
    # a user-supplied hash is overwritten by the computed one
    run2 = create_run_directory("policy", base_dir=base_dir, durable=False, git=False,
                                parameters={"alpha": 1, "config_hash": "forged"})
    assert read_manifest(run2.path).parameters.config_hash == config_hash({"alpha": 1})
    run.mark_success()
    run2.mark_success()
    assert read_manifest(run.path).parameters.config_hash == config_hash({"alpha": 1})


def test_manifest_model_is_the_public_one():
    from quantbot.artifacts import RunManifest as Public

    assert Public is RunManifest
