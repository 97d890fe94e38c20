"""ArtifactWriter: one artifact file of a run, written in batches, committed atomically.

The file appears under its final name only when the writer is closed cleanly; any failure
(a bad batch, a full disk) discards its temporary file. RunDirectory owns the manifest
entry that the close records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SCHEMA_VERSION, ArtifactSpec
from quantbot.artifacts.schema.convert import conform
from quantbot.artifacts.schema.layout import iso_utc, utc_now
from quantbot.artifacts.schema.manifest import ArtifactEntry
from quantbot.errors import RunStateError, SchemaMismatchError

if TYPE_CHECKING:
    from quantbot.artifacts.store.writer import RunDirectory


def _footer_metadata(spec: ArtifactSpec, run_id: str, rows: int) -> dict[str, str]:
    return {
        "artifact_type": spec.type.value,
        "run_id": run_id,
        "created_at": iso_utc(utc_now()),
        "rows": str(rows),
        "schema_version": ARTIFACT_SCHEMA_VERSION,
    }


class ArtifactWriter:
    """Appends batches to one artifact file without holding all rows in memory.

    The file appears under its final name only when the writer is closed cleanly.
    """

    def __init__(self, run: RunDirectory, spec: ArtifactSpec, compression: str) -> None:
        self._run = run
        self._spec = spec
        self._compression = compression
        self._sink = run.storage.open_atomic(run._artifact_abspath(spec), run.durable)
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def write(self, data: Any) -> None:
        table = conform(data, self._spec, self._run.run_id)
        if self._writer is None:
            # store_schema=False: run_id is written from a dictionary array but must read
            # back as a plain string column; key-value metadata is added explicitly.
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._sink, self._schema, compression=self._compression,
                                            store_schema=False)
        elif table.schema.names != self._schema.names:
            raise RunStateError(
                f"{self._spec.type.value}: batch columns {table.schema.names} differ from the "
                f"first batch's {self._schema.names}")
        else:
            table = self._like_first_batch(table)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _like_first_batch(self, table: pa.Table) -> pa.Table:
        """Later batches take the first batch's column types (extra columns may differ)."""
        assert self._schema is not None
        for i, field in enumerate(self._schema):
            col = table.column(i)
            if col.type != field.type:
                try:
                    table = table.set_column(i, field, col.cast(field.type, safe=True))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise SchemaMismatchError(
                        f"{self._spec.type.value}: column {field.name} is {col.type} in this "
                        f"batch but {field.type} in the first batch") from None
        return table

    def close(self) -> ArtifactEntry:
        try:
            if self._writer is None:
                self.write(None)
            assert self._writer is not None
            self._writer.add_key_value_metadata(
                _footer_metadata(self._spec, self._run.run_id, self.rows))
            self._writer.close()
            written = self._sink.commit()
        except BaseException:
            self.abort()  # e.g. ENOSPC: no temporary file stays behind
            raise
        self.entry = self._run._record_artifact(self._spec, self.rows, written)
        return self.entry

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        except (OSError, pa.ArrowException):
            pass  # the file is being thrown away: its footer does not matter
        finally:
            self._sink.discard()
            self._run._open_writers.pop(self._spec.type, None)

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
