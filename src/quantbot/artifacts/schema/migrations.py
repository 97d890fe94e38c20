"""Schema evolution: upgrading artifacts written by older quantbot versions when read.

Every artifact file records its ``schema_version`` in the footer. A reader (the catalog
sync, ``read_artifact``) upgrades an older file step by step through ``MIGRATIONS``, so
the cross-run views and readers see one current schema across runs of any age. A file
from a *newer* quantbot is refused with a clear error instead of being misread.

A step may add columns (filled with nulls, or with the value every old row meant: runs
before 1.2.0 were all long, so their ``side`` is 'long'), rename columns, and widen types
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
    filled: dict[str, object] = field(default_factory=dict)  # added column -> its value
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
                table = table.append_column(f, self._column(f, table.num_rows))
        return table

    def _column(self, f: pa.Field, rows: int) -> pa.Array:
        """An added column: its ``filled`` value (what every old row meant), else nulls."""
        if f.name in self.filled:
            return pa.array([self.filled[f.name]] * rows, f.type)
        return pa.nulls(rows, f.type)


def _registry() -> list[Migration]:
    from quantbot.artifacts.schema.arrow_schemas import (
        FRONTIER_1_2_FIELDS,
        FRONTIER_VALIDATION_FIELDS,
        SIDE_FIELD,
        SUMMARY_1_2_FIELDS,
    )

    return [
        # 1.1.0: the frontier gained out-of-sample validation columns.
        Migration("1.0.0", "1.1.0", frozenset({ArtifactType.FRONTIER}),
                  added=FRONTIER_VALIDATION_FIELDS),
        # 1.2.0: alerts, paths and trades record the side (every older run was long).
        Migration("1.1.0", "1.2.0",
                  frozenset({ArtifactType.ALERTS, ArtifactType.PATHS, ArtifactType.TRADES}),
                  added=(SIDE_FIELD,), filled={"side": "long"}),
        # 1.2.0 too: summary and frontier gained split labels, win/loss and portfolio
        # figures (null in older files: not computed then).
        Migration("1.1.0", "1.2.0", frozenset({ArtifactType.SUMMARY}),
                  added=SUMMARY_1_2_FIELDS),
        Migration("1.1.0", "1.2.0", frozenset({ArtifactType.FRONTIER}),
                  added=FRONTIER_1_2_FIELDS),
    ]


# The registry, oldest first. A version's steps follow the previous version's; one version
# may have several steps (each for its own artifact types).
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
    written, now = parse_version(version), parse_version(ARTIFACT_SCHEMA_VERSION)
    for step in steps:  # oldest first; several steps may share a version (one per artifact)
        if parse_version(step.from_version) >= written and parse_version(step.to_version) <= now:
            table = step.apply(kind, table)
    return table


def needs_upgrade(version: str) -> bool:
    return parse_version(version) < parse_version(ARTIFACT_SCHEMA_VERSION)
