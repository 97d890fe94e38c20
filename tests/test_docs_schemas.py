"""docs/schemas.md is the contract: its tables must match the code, column for column.

The markdown tables are parsed and compared with the Arrow schemas, the pydantic manifest
model, a real run's Parquet footer and a real DuckDB catalog, so neither side can drift.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from catalog_compare import fresh_table_columns
from pydantic import BaseModel

from quantbot.artifacts.catalog.schema import (
    ARTIFACTS_TABLE,
    RUNS_TABLE,
    data_table,
    ensure_schema,
    view_name,
)
from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, BUILTIN_FEATURES
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.manifest import RUN_STATUSES, RUN_TYPES, RunManifest
from quantbot.artifacts.schema.versions import ARTIFACT_SCHEMA_VERSION, MANIFEST_SCHEMA_VERSION
from quantbot.artifacts.store.writer import create_run_directory

DOC = Path(__file__).resolve().parent.parent / "docs" / "schemas.md"
ARROW_NAMES = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64",
               pa.bool_(): "bool"}
PY_NAMES = {str: "string", int: "int", float: "float", bool: "bool"}


def _sections() -> dict[str, list[str]]:
    """Heading text (without #'s and backticks) -> the lines under it, up to the next heading."""
    out: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#{1,6} (.*)$", line)
        if m:
            current = m.group(1).replace("`", "").strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


SECTIONS = _sections()


def _section(prefix: str) -> list[str]:
    matches = [h for h in SECTIONS if h == prefix or h.startswith(prefix + " ")]
    assert len(matches) == 1, f"docs/schemas.md: expected one heading '{prefix}', got {matches}"
    return SECTIONS[matches[0]]


def _table(lines: list[str]) -> list[dict[str, str]]:
    """The first markdown table of ``lines`` as rows keyed by header (backticks kept)."""
    rows = [line for line in lines if line.startswith("|")]
    assert rows, "no table"
    start = lines.index(rows[0])
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip().strip("|").split("|")])
    header, body = block[0], block[2:]
    assert set(block[1][0]) <= set("-: "), "second row must be the separator"
    return [dict(zip(header, cells)) for cells in body]


def _name(cell: str) -> str:
    return cell.replace("`", "").strip()


def _expected_fields(kind: ArtifactType) -> list[pa.Field]:
    fields = list(ARTIFACT_SPECS[kind].schema)
    if kind is ArtifactType.FEATURES:
        fields += list(BUILTIN_FEATURES)
    return fields


@pytest.mark.parametrize("kind", list(ArtifactType), ids=lambda k: k.value)
def test_every_artifact_column_with_type_and_nullability(kind: ArtifactType) -> None:
    rows = _table(_section(kind.value))
    documented = [_name(r["column"]) for r in rows]
    expected = _expected_fields(kind)
    assert documented == [f.name for f in expected], f"{kind.value}: columns differ"
    for row, f in zip(rows, expected):
        where = f"{kind.value}.{f.name}"
        assert row["type"] == ARROW_NAMES[f.type], f"{where}: type {row['type']} != {f.type}"
        assert row["nullable"] == ("yes" if f.nullable else "no"), f"{where}: nullable"
        assert row["meaning"], f"{where}: no meaning"


def test_artifact_paths_table() -> None:
    rows = {_name(r["type"]): _name(r["file"]) for r in _table(_section("Artifact types"))}
    assert rows == {t.value: t.path for t in ArtifactType}


def test_footer_metadata_keys_match_a_written_file(tmp_path: Path) -> None:
    run = create_run_directory("policy", base_dir=tmp_path, durable=False, git=False)
    entry = run.write_artifact("errors", None)
    run.mark_success()
    meta = pq.read_metadata(Path(run.path) / entry.path).metadata or {}
    keys = sorted(k.decode() for k in meta if not k.startswith(b"ARROW:"))
    rows = _table(_section("Footer metadata"))
    assert sorted(_name(r["key"]) for r in rows) == keys
    assert f"`{ARTIFACT_SCHEMA_VERSION}`" in "\n".join(_section("Footer metadata"))


def _unwrap(annotation: typing.Any) -> typing.Any:
    """``X | None`` -> X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _manifest_fields(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[str, bool]]:
    """Dotted field name -> (documented type, required) for the model and its sub-models."""
    out: dict[str, tuple[str, bool]] = {}
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        typ = _unwrap(info.annotation)
        if isinstance(typ, type) and issubclass(typ, BaseModel):
            out[key] = ("object", info.is_required())
            out.update(_manifest_fields(typ, key + "."))
        elif typing.get_origin(typ) is dict:
            out[key] = ("object", info.is_required())
            out.update(_manifest_fields(typing.get_args(typ)[1], key + ".<type>."))
        elif typing.get_origin(typ) is typing.Literal:
            out[key] = ("string", info.is_required())
        else:
            out[key] = (PY_NAMES[typ], info.is_required())
    return out


def test_every_manifest_field_with_type_and_required() -> None:
    rows = _table(_section("run.json"))
    documented = {_name(r["field"]): r for r in rows}
    expected = _manifest_fields(RunManifest)
    assert set(documented) == set(expected), (
        f"missing: {sorted(set(expected) - set(documented))}, "
        f"not in the model: {sorted(set(documented) - set(expected))}")
    for key, (typ, required) in expected.items():
        row = documented[key]
        assert row["type"] == typ, f"run.json {key}: type {row['type']} != {typ}"
        assert row["required"] == ("yes" if required else "no"), f"run.json {key}: required"
    for value in RUN_TYPES:
        assert f"`{value}`" in documented["run_type"]["meaning"], value
    for value in RUN_STATUSES:
        assert f"`{value}`" in documented["status"]["meaning"], value
    assert f"`{MANIFEST_SCHEMA_VERSION}`" in documented["schema_version.manifest"]["meaning"]
    assert f"`{ARTIFACT_SCHEMA_VERSION}`" in documented["schema_version.artifacts"]["meaning"]


@pytest.mark.parametrize("table", [RUNS_TABLE, ARTIFACTS_TABLE])
def test_catalog_tables_match_a_real_catalog(tmp_path: Path, table: str) -> None:
    actual = fresh_table_columns(tmp_path / "catalog.duckdb", table)
    rows = _table(_section(table))
    assert [_name(r["column"]) for r in rows] == list(actual), f"{table}: columns differ"
    for row in rows:
        name = _name(row["column"])
        assert row["type"] == actual[name], f"{table}.{name}: {row['type']} != {actual[name]}"


def test_consolidated_tables_and_views_are_listed_and_exist(tmp_path: Path) -> None:
    text = "\n".join(_section("Consolidated tables and cross-run views"))
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    try:
        ensure_schema(con)
        names = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    for kind in ArtifactType:
        for name in (data_table(kind), view_name(kind)):
            assert f"`{name}`" in text, name
            assert name in names, name


ROOT = DOC.parent.parent
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a markdown file (duplicates numbered -1, -2, ...)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#{1,6} (.*)$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("doc", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda p: p.name)
def test_doc_links_stay_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "shared/design" not in text, f"{doc.name}: refers to a file outside the repository"
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+://|^mailto:", target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        assert dest.is_relative_to(ROOT), f"{doc.name}: link {target} leaves the repository"
        assert dest.exists(), f"{doc.name}: link {target} points to a missing file"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{doc.name}: link {target}: no such heading"
