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


class AmbiguousRunIdError(QuantbotError, LookupError):
    """A run-id prefix that matches more than one run (give more characters)."""


class SqlError(QuantbotError, ValueError):
    """User SQL that fails, or that the read-only guard refuses (not one SELECT, a file outside
    ``--allow-read``, a write, a setting)."""


class SqlTimeoutError(SqlError):
    """User SQL that ran longer than its statement timeout (``--timeout``) and was interrupted."""


class RunMarkedFailedError(RunStateError):
    """A writer whose run another process (``gc --apply``) marked failed while it ran.

    The writer stops and writes no ``_SUCCESS``; the failed manifest on disk is kept.
    """


class InvalidArgumentError(QuantbotError, ValueError):
    """An argument outside its domain (a run type, a status, a limit, a date, a tolerance):
    the caller's mistake, never a state of a run (that is RunStateError)."""


class FlowParameterError(InvalidArgumentError):
    """A flow parameter that does not validate (horizon, interval, activity move, fees)."""


class GridError(InvalidArgumentError):
    """A policy grid file or object that cannot be expanded into valid policies."""


class ValidationSpecError(InvalidArgumentError):
    """A ``--validation`` value that does not parse, or a split that cannot be made."""


class OptimizerConfigError(InvalidArgumentError):
    """An optimizer setting that does not validate (one line naming the setting)."""


class ReportError(QuantbotError):
    """A report that cannot be written (no matplotlib, an unwritable output path)."""


class IncomparableRunsError(QuantbotError, ValueError):
    """Two runs that share no artifact of per-call outcomes (trades or paths)."""


class UnsafeFileError(QuantbotError, OSError):
    """A path in a run tree that is a symbolic link, FIFO, socket, device or folder where a
    regular file belongs: refused without reading it (it could block a reader forever,
    never end, or point outside the run)."""


class LimitExceededError(QuantbotError, ValueError):
    """Input over one of the documented size limits (manifest bytes, JSON depth, columns,
    decoded bytes), refused before it is decoded so that memory stays bounded."""


class CatalogWriteError(CatalogError):
    """A catalog file that cannot be written (disk full, read-only file system): the sync
    stops and names the cause; what was committed before stays intact."""


class ArchiveError(QuantbotError):
    """An archive that cannot be written, verified or restored safely (a refusal changes
    nothing; a failure is rolled back)."""


class StorageTimeoutError(StorageError):
    """An object store that did not answer in time (or dropped the connection) for one key.

    For a write it also says whether the object is known to be absent or its outcome is
    unknown (the store may still apply a request it had received).
    """


class InvalidRunError(QuantbotError):
    """A run directory whose manifest or artifacts do not check out (sync reports it as
    ``invalid: <path>: <reason>``; it never stops the other runs)."""


class PortfolioConfigError(InvalidArgumentError):
    """A portfolio setting that does not validate (one line naming the key, e.g.
    ``portfolio.size.fraction: ...``), or volatility sizing without volatilities."""


class PortfolioInputError(DataError):
    """Trades a portfolio cannot be simulated on (arrays of different lengths, a missing
    return, an exit before its entry): one line naming the first bad row."""


class ObjectiveError(OptimizerConfigError):
    """An objective that cannot be computed as configured (e.g. ``sharpe`` without the
    per-policy portfolio metrics it ranks on)."""


class FilterError(InvalidArgumentError):
    """A run filter or order-by that does not parse or type-check: one line naming the
    culprit and its 1-based column (``filter: unexpected 'AN' at column 24``), or an unknown
    field with its close matches."""


class AnnotationError(InvalidArgumentError):
    """A tag key, tag value, name or note that cannot be recorded (one line naming it and
    the rule it breaks, e.g. ``tag key 'a b': use only A-Z a-z 0-9 _ . -``)."""


class ExecutorError(InvalidArgumentError):
    """An ``--executor`` value that does not parse (``local``, ``dask://HOST:PORT``,
    ``dask-local[:N]``), or a Dask scheduler that cannot be reached (one line naming it)."""


class ExecutorTaskError(QuantbotError):
    """A task that failed on an executor where every task is needed (an optimizer chunk):
    one line naming the task, the executor and the task's error."""


class SweepSpecError(InvalidArgumentError):
    """A sweep spec that cannot be run, refused before any run directory exists: one line
    naming the file and the JSON path of the culprit (``inputs[0].alerts: ...``)."""


class SweepTaskError(QuantbotError):
    """A sweep task whose earlier attempt already failed deterministically: reported again
    (``<Type>: <message>`` of that attempt) instead of being run once more."""
