"""The run.json manifest as a pydantic model, validated on every write and every read."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.layout import validate_run_id
from quantbot.artifacts.schema.versions import (
    ARTIFACT_SCHEMA_VERSION,
    MANIFEST_SCHEMA_VERSION,
    parse_version,
)
from quantbot.errors import LimitExceededError, ManifestError

# Limits checked before a run.json is decoded. A real manifest is a few KB (parameters,
# timing, seven artifact entries); these leave three orders of magnitude of headroom while
# keeping a hostile file from costing more than ~0.3 GB of memory or a RecursionError.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # 16 MiB
MAX_JSON_DEPTH = 64  # nesting of objects/arrays; quantbot writes at most ~5
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

RunType = Literal["path-only", "policy", "optimization", "full", "sweep"]
RunStatus = Literal["pending", "running", "completed", "failed"]
RUN_TYPES: tuple[str, ...] = RunType.__args__  # type: ignore[attr-defined]
RUN_STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ArtifactEntry(_Model):
    rows: int = Field(ge=0)
    path: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DatasetInfo(_Model):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    interval: str = ""
    calls_count: int = Field(default=0, ge=0)


class Parameters(BaseModel):
    """Free-form run parameters; unknown keys are kept."""

    model_config = ConfigDict(extra="allow")
    strategy_id: str | None = None
    policy_id: str | None = None
    config_hash: str | None = None


class SchemaVersions(_Model):
    manifest: str = MANIFEST_SCHEMA_VERSION
    artifacts: str = ARTIFACT_SCHEMA_VERSION


class Timing(_Model):
    model_config = ConfigDict(extra="allow")
    plan_ms: float | None = None
    coverage_ms: float | None = None
    slice_ms: float | None = None
    execution_ms: float | None = None
    optimization_ms: float | None = None
    store_ms: float | None = None
    total_ms: float | None = None


class Logs(_Model):
    stdout: str | None = None
    stderr: str | None = None


class ErrorInfo(_Model):
    type: str
    message: str
    traceback: str | None = None
    phase: str | None = None  # the flow phase that failed (plan, execution, store, ...); 1.1.0


class HostInfo(_Model):
    hostname: str
    python: str
    quantbot: str
    platform: str


class RunManifest(_Model):
    run_id: str
    run_type: RunType
    status: RunStatus
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    dataset: DatasetInfo = Field(default_factory=DatasetInfo)
    parameters: Parameters = Field(default_factory=Parameters)
    schema_version: SchemaVersions = Field(default_factory=SchemaVersions)
    artifacts: dict[str, ArtifactEntry] = Field(default_factory=dict)
    timing: Timing | None = None
    logs: Logs | None = None
    error: ErrorInfo | None = None
    host: HostInfo | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: SchemaVersions) -> SchemaVersions:
        # A manifest from a newer quantbot is refused rather than misread.
        if parse_version(v.manifest) > parse_version(MANIFEST_SCHEMA_VERSION):
            raise ValueError(f"manifest schema version {v.manifest} is newer than this quantbot "
                             f"supports ({MANIFEST_SCHEMA_VERSION}); upgrade quantbot")
        if parse_version(v.artifacts) > parse_version(ARTIFACT_SCHEMA_VERSION):
            raise ValueError(f"artifact schema version {v.artifacts} is newer than this quantbot "
                             f"supports ({ARTIFACT_SCHEMA_VERSION}); upgrade quantbot")
        return v

    @field_validator("created_at", "started_at", "completed_at")
    @classmethod
    def _iso_utc(cls, v: str | None) -> str | None:
        # Timestamps are compared and sorted across runs: they must carry a time zone.
        if v is None:
            return v
        try:
            ts = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{v!r} is not an ISO-8601 timestamp") from None
        if ts.tzinfo is None:
            raise ValueError(f"{v!r} has no time zone (write it in UTC with a Z suffix)")
        try:  # year 1 or 9999 with an offset has no UTC equivalent
            ts.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{v!r} is out of range in UTC") from None
        return v

    @field_validator("run_id")
    @classmethod
    def _uuid(cls, v: str) -> str:
        return validate_run_id(v)

    @field_validator("artifacts")
    @classmethod
    def _artifact_paths(cls, v: dict[str, ArtifactEntry]) -> dict[str, ArtifactEntry]:
        # Paths are fixed per type, so a manifest can never point outside its run directory.
        for name, entry in v.items():
            expected = ArtifactType.parse(name).path
            if entry.path != expected:
                raise ValueError(f"artifact {name} must live at {expected}, not {entry.path!r}")
        return v

    def to_json(self) -> str:
        """Indented JSON for people and diffs (pydantic's Rust serializer: fast)."""
        return self.model_dump_json(indent=2, by_alias=True, exclude_none=True) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same parameters always hash the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)


def config_hash(parameters: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the parameters, excluding the hash itself."""
    body = {k: v for k, v in parameters.items() if k != "config_hash" and v is not None}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``update`` merged in; nested dicts merge, other values replace."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(root)"
    return f"{loc}: {e['msg']}"


def validate_manifest(data: dict[str, Any], where: str = "run.json") -> RunManifest:
    """A validated manifest, or ManifestError naming the file and the offending field."""
    try:
        return RunManifest.model_validate(data)
    except ValidationError as err:
        raise ManifestError(f"{where}: invalid manifest: {_first_error(err)}") from None


def json_depth(raw: bytes) -> int:
    """Deepest nesting of objects/arrays, counted without decoding (strings skipped); the
    count stops just past MAX_JSON_DEPTH, so a hostile file costs one pass at C speed."""
    depth = deepest = 0
    for char in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if char in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                break
    return deepest


def check_manifest_limits(raw: bytes, where: str) -> None:
    """LimitExceededError for a run.json too large or too deeply nested to decode safely."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise LimitExceededError(f"{where}: manifest bytes {len(raw)} > {MAX_MANIFEST_BYTES}")
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise LimitExceededError(f"{where}: JSON depth {depth}+ > {MAX_JSON_DEPTH}")


def parse_manifest(text: str | bytes, where: str = "run.json") -> RunManifest:
    """A validated manifest from run.json's text (limits checked before decoding)."""
    check_manifest_limits(text.encode() if isinstance(text, str) else text, where)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return validate_manifest(data, where)
