"""The range every epoch-millisecond timestamp must lie in, and which columns are timestamps.

Why a range: a value outside the years 1-9999 (UTC) is a wrong unit or corrupt data, never
a real time, and Python's datetime (ISO strings in manifests, logs, reports) cannot show it:
left in, it fails far away as ``ValueError: year -29719 is out of range``, naming no column.
Readers of inputs and the artifact writer both reject it where the column is known.
"""

from __future__ import annotations

MIN_TS_MS = -62_135_596_800_000
"""0001-01-01T00:00:00.000Z in epoch ms: the earliest accepted timestamp."""

MAX_TS_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z in epoch ms: the latest accepted timestamp."""

RANGE_TEXT = f"timestamps must lie in the years 1-9999 UTC (epoch ms {MIN_TS_MS}..{MAX_TS_MS})"


def is_timestamp_column(name: str) -> bool:
    """Artifact columns named ``ts_ms``, ``*_ts_ms`` or ``t_*_ms`` hold epoch ms
    (SCHEMAS.md); other ``*_ms`` columns (``time_exposed_ms``) are durations and have no
    range."""
    return (name == "ts_ms" or name.endswith("_ts_ms")
            or (name.startswith("t_") and name.endswith("_ms")))
