"""quantbot.artifacts: the storage system — schemas, run directories, the catalog.

It knows nothing about how a backtest computes anything; any program can write runs here.
"""

from quantbot.artifacts.catalog import (
    DEFAULT_CATALOG,
    SyncReport,
    catalog_all_runs,
    get_artifact_path,
    get_catalog_stats,
    initialize_catalog,
    query_runs,
    register_run,
    run_sql,
)
from quantbot.artifacts.manifest import RunManifest
from quantbot.artifacts.provenance import GitProvenance, get_git_provenance
from quantbot.artifacts.runs import (
    find_run_directory,
    is_complete,
    list_run_directories,
    read_manifest,
)
from quantbot.artifacts.types import ARTIFACT_SPECS, ArtifactType
from quantbot.artifacts.writer import ArtifactWriter, RunDirectory, create_run_directory

__all__ = [
    "ARTIFACT_SPECS", "ArtifactType", "ArtifactWriter", "DEFAULT_CATALOG", "GitProvenance",
    "RunDirectory", "RunManifest", "SyncReport", "catalog_all_runs", "create_run_directory",
    "find_run_directory", "get_artifact_path", "get_catalog_stats", "get_git_provenance",
    "initialize_catalog", "is_complete", "list_run_directories", "query_runs", "read_manifest",
    "register_run", "run_sql",
]
