"""Every error a user can cause has its own type; the CLI prints ``str(err)`` as one line.

Messages name the culprit (file, column, row, value) so that no traceback is needed.
"""

from __future__ import annotations


class QuantbotError(Exception):
    """Base of all user-facing errors (bad input, bad state); never a bug."""


class InvalidRunIdError(QuantbotError, ValueError):
    """A run id that is not a UUID (rejected before any path is built from it)."""


class UnknownArtifactTypeError(QuantbotError, ValueError):
    """An artifact type name that quantbot does not know."""


class SchemaMismatchError(QuantbotError, ValueError):
    """Data that cannot be cast safely to an artifact's Arrow schema."""


class RunExistsError(QuantbotError, FileExistsError):
    """A run directory that already exists: runs are never overwritten."""


class RunStateError(QuantbotError):
    """An operation that the run's state forbids (e.g. writing after _SUCCESS)."""


class ManifestError(QuantbotError, ValueError):
    """A run.json that is missing, unreadable or invalid."""


class RunNotFoundError(QuantbotError, LookupError):
    """A run id that is neither in the catalog nor under the base dir."""


class CatalogError(QuantbotError):
    """A catalog file that cannot be opened, is not a DuckDB database, or stays locked."""


class DataError(QuantbotError, ValueError):
    """Input data (alerts, candles) that is missing, ambiguous or malformed."""


class PolicyError(QuantbotError, ValueError):
    """A policy definition that does not validate."""


class StorageError(QuantbotError):
    """A base dir or object-store URI that cannot be opened."""


class SchemaVersionError(QuantbotError, ValueError):
    """An artifact or manifest written with a schema version this quantbot cannot read."""


class StorageTimeoutError(StorageError):
    """An object store that did not answer in time (or dropped the connection) for one key.

    For a write it also says whether the object is known to be absent or its outcome is
    unknown (the store may still apply a request it had received).
    """
