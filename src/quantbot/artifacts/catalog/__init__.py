"""The DuckDB catalog: an index of completed (and failed) runs plus cross-run views.

It is derived data: deleting the file and syncing again gives the same answers.
Attributes are imported lazily so that a query does not pay for the sync machinery.
"""

from quantbot._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_CATALOG": "quantbot.artifacts.catalog.connection",
    "open_catalog": "quantbot.artifacts.catalog.connection",
    "catalog_relations": "quantbot.artifacts.catalog.overview",
    "catalog_stamp": "quantbot.artifacts.catalog.overview",
    "get_artifact_path": "quantbot.artifacts.catalog.query",
    "get_catalog_stats": "quantbot.artifacts.catalog.query",
    "get_run": "quantbot.artifacts.catalog.query",
    "query_runs": "quantbot.artifacts.catalog.query",
    "run_sql": "quantbot.artifacts.catalog.query",
    **{name: "quantbot.artifacts.catalog.listing" for name in (
        "RunListing", "filter_fields", "flat_row", "list_runs", "listing_columns",
        "validate_filter")},
    "InvalidRunError": "quantbot.artifacts.store.validate",
    "SyncReport": "quantbot.artifacts.catalog.sync",
    "catalog_all_runs": "quantbot.artifacts.catalog.sync",
    "initialize_catalog": "quantbot.artifacts.catalog.sync",
    "register_run": "quantbot.artifacts.catalog.sync",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
