"""Run-directory layout: run-id rules, month partitions and the paths built from them.

A run id is validated *before* any path is built from it, so `../` or other traversal
can never reach the filesystem.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from quantbot.errors import InvalidRunIdError

SUCCESS_MARKER = "_SUCCESS"
MANIFEST_NAME = "run.json"
LOGS_DIR = "logs"
RUN_DIR_PREFIX = "run_id="

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def new_run_id() -> str:
    return str(uuid.uuid4())


def validate_run_id(value: object) -> str:
    """The canonical (lowercase, hyphenated) form of a UUID run id, or InvalidRunIdError."""
    text = str(value).strip().lower() if isinstance(value, str | uuid.UUID) else None
    if text is None or not _UUID_RE.match(text):
        raise InvalidRunIdError(f"invalid run id {value!r}: run ids must be UUIDs like {new_run_id()}")
    return text


def is_month_partition(name: str) -> bool:
    return bool(_MONTH_RE.match(name))


def month_partition(created_at: datetime) -> str:
    """The YYYY-MM partition of a creation time, always taken in UTC."""
    return created_at.astimezone(UTC).strftime("%Y-%m")


def run_dir_name(run_id: str) -> str:
    return RUN_DIR_PREFIX + validate_run_id(run_id)


def run_id_from_dir_name(name: str) -> str | None:
    """The run id of a ``run_id=<uuid>`` folder name, None for anything else."""
    if not name.startswith(RUN_DIR_PREFIX):
        return None
    candidate = name[len(RUN_DIR_PREFIX):]
    return candidate if _UUID_RE.match(candidate) else None


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(ts: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z`` suffix, as in every manifest field."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
