"""docs/schemas.md documents the annotation records and label tables as the code has them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from catalog_compare import fresh_table_columns

from quantbot.artifacts.catalog.labels import ANNOTATIONS_TABLE, LABELS_TABLE, TAGS_TABLE
from quantbot.artifacts.store.annotations import new_record

DOC = Path(__file__).resolve().parent.parent / "docs" / "schemas.md"


def _first_table(heading: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    body = re.split(rf"^#+ {re.escape(heading)}\n", text, flags=re.MULTILINE)[1]
    body = re.split(r"^#+ ", body, flags=re.MULTILINE)[0]
    lines = [ln for ln in body.splitlines() if ln.startswith("|")]
    return [[c.strip().strip("`") for c in ln.strip("|").split("|")] for ln in lines[2:]]


@pytest.mark.parametrize("table", [ANNOTATIONS_TABLE, LABELS_TABLE, TAGS_TABLE])
def test_label_tables_match_a_real_catalog(tmp_path: Path, table: str) -> None:
    actual = fresh_table_columns(tmp_path / "c.duckdb", table)
    assert [(r[0], r[1]) for r in _first_table(table)] == list(actual.items())


def test_record_fields_are_documented() -> None:
    record = new_record("0e6c3a58-5a3f-4f8e-9f0a-3c1c2b1a0d9e", "note", None, "x")
    assert [r[0] for r in _first_table("Annotation records")] == list(record.to_dict())
