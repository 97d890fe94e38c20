"""Schema evolution: upgrading artifacts written by older quantbot versions when read.

Every artifact file records its ``schema_version`` in the footer. A reader (the catalog
sync, ``read_artifact``) upgrades an older file step by step through ``MIGRATIONS``, so
the cross-run views and readers see one current schema across runs of any age. A file
from a *newer* quantbot is refused with a clear error instead of being misread.

A step may add nullable columns (filled with nulls), rename columns, and widen types
(e.g. int32 -> int64, float32 -> float64): the changes that keep old data meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from quantbot.artifacts.schema import versions
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.versions import ARTIFACT_SCHEMA_VERSION
from quantbot.errors import SchemaVersionError


def parse_version(text: str) -> tuple[int, ...]:
    try:
        return versions.parse_version(text)
    except ValueError as err:
        raise SchemaVersionError(str(err)) from None


@dataclass(frozen=True)
class Migration:
    """One step ``from_version`` -> ``to_version`` for the listed artifact types."""

    from_version: str
    to_version: str
    artifacts: frozenset[ArtifactType]
    renames: dict[str, str] = field(default_factory=dict)
    added: tuple[pa.Field, ...] = ()
    widened: dict[str, pa.DataType] = field(default_factory=dict)

    def apply(self, kind: ArtifactType, table: pa.Table) -> pa.Table:
        if kind not in self.artifacts:
            return table
        if self.renames:
            table = table.rename_columns([self.renames.get(n, n) for n in table.column_names])
        for name, typ in self.widened.items():
            if name in table.column_names:
                i = table.column_names.index(name)
                table = table.set_column(i, table.schema.field(name).with_type(typ),
                                         table.column(name).cast(typ))
        for f in self.added:
            if f.name not in table.column_names:
                table = table.append_column(f, pa.nulls(table.num_rows, f.type))
        return table


def _registry() -> list[Migration]:
    from quantbot.artifacts.schema.arrow_schemas import FRONTIER_VALIDATION_FIELDS

    return [
        # 1.1.0: the frontier gained out-of-sample validation columns.
        Migration("1.0.0", "1.1.0", frozenset({ArtifactType.FRONTIER}),
                  added=FRONTIER_VALIDATION_FIELDS),
    ]


# The registry, oldest first. Each step's from_version is the previous step's to_version.
MIGRATIONS: list[Migration] = _registry()


def check_supported(version: str, where: str = "artifact") -> None:
    """A newer-than-known version is an error: never guess at a future layout."""
    if parse_version(version) > parse_version(ARTIFACT_SCHEMA_VERSION):
        raise SchemaVersionError(
            f"{where} has schema version {version}, newer than this quantbot supports "
            f"({ARTIFACT_SCHEMA_VERSION}); upgrade quantbot to read it")


def upgrade(table: pa.Table, kind: ArtifactType, version: str,
            migrations: list[Migration] | None = None) -> pa.Table:
    """``table`` as written at ``version``, upgraded to the current schema version."""
    check_supported(version, f"{kind.value} artifact")
    steps = MIGRATIONS if migrations is None else migrations
    current = parse_version(version)
    for step in steps:
        if parse_version(step.from_version) >= current and \
                parse_version(step.to_version) <= parse_version(ARTIFACT_SCHEMA_VERSION):
            table = step.apply(kind, table)
            current = parse_version(step.to_version)
    return table


def needs_upgrade(version: str) -> bool:
    return parse_version(version) < parse_version(ARTIFACT_SCHEMA_VERSION)
