"""quantbot.artifacts: the storage system — schemas, run directories, the catalog.

It knows nothing about how a backtest computes anything; any program can write runs here.
Attributes are imported lazily (``from quantbot.artifacts import create_run_directory``
works as usual) so that light commands start fast.
"""

from quantbot._lazy import lazy_exports

_CATALOG = "quantbot.artifacts.catalog"
_EXPORTS = {
    **{name: _CATALOG for name in (
        "DEFAULT_CATALOG", "SyncReport", "catalog_all_runs", "get_artifact_path",
        "get_catalog_stats", "initialize_catalog", "query_runs", "register_run", "run_sql")},
    **{name: "quantbot.artifacts.catalog.listing" for name in (
        "RunListing", "filter_fields", "flat_row", "list_runs", "listing_columns",
        "validate_filter")},
    "RunManifest": "quantbot.artifacts.schema.manifest",
    **{name: "quantbot.artifacts.handle" for name in ("RunHandle", "Store", "open_store")},
    "locate_run": "quantbot.artifacts.ops.lookup",
    **{name: "quantbot.artifacts.ops.annotate" for name in (
        "AnnotationRecord", "annotation_history", "delete_runs", "name_run", "note_run",
        "run_annotations_state", "tag_runs", "undelete_runs", "untag_runs")},
    "read_artifact": "quantbot.artifacts.store.reader",
    "GitProvenance": "quantbot.artifacts.store.provenance",
    "get_git_provenance": "quantbot.artifacts.store.provenance",
    **{name: "quantbot.artifacts.store.runs" for name in (
        "find_run_directory", "is_complete", "list_run_directories", "read_manifest")},
    "ARTIFACT_SPECS": "quantbot.artifacts.schema.arrow_schemas",
    "ArtifactType": "quantbot.artifacts.schema.arrow_schemas",
    **{name: "quantbot.artifacts.store.writer" for name in (
        "ArtifactWriter", "RunDirectory", "create_run_directory")},
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
