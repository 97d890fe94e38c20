"""The DuckDB catalog: an index of completed (and failed) runs plus cross-run views.

It is derived data: deleting the file and syncing again gives the same answers.
"""

from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG, open_catalog
from quantbot.artifacts.catalog.query import (
    get_artifact_path,
    get_catalog_stats,
    get_run,
    query_runs,
    run_sql,
)
from quantbot.artifacts.catalog.scan import InvalidRunError
from quantbot.artifacts.catalog.sync import (
    SyncReport,
    catalog_all_runs,
    initialize_catalog,
    register_run,
)

__all__ = [
    "DEFAULT_CATALOG", "InvalidRunError", "SyncReport", "catalog_all_runs", "get_artifact_path",
    "get_catalog_stats", "get_run", "initialize_catalog", "open_catalog", "query_runs",
    "register_run", "run_sql",
]
