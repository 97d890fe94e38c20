"""The artifact kinds and where each lives in a run directory (no heavy imports)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from quantbot.errors import UnknownArtifactTypeError

if TYPE_CHECKING:
    from quantbot.artifacts.schema.arrow_schemas import ArtifactSpec


class ArtifactType(str, Enum):
    """The eight artifact kinds; the value is the name used in files, manifests and SQL."""

    ALERTS = "alerts"
    PATHS = "paths"
    FEATURES = "features"
    TRADES = "trades"
    SUMMARY = "summary"
    FRONTIER = "frontier"
    ERRORS = "errors"
    EQUITY = "equity"

    @classmethod
    def parse(cls, value: str | ArtifactType) -> ArtifactType:
        """The artifact type named ``value``; a clear error listing the known ones otherwise."""
        if isinstance(value, ArtifactType):
            return value
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(t.value for t in cls)
            raise UnknownArtifactTypeError(
                f"unknown artifact type {value!r} (known: {known})"
            ) from None

    @property
    def path(self) -> str:
        """The file's path relative to the run directory."""
        return ARTIFACT_PATHS[self]

    @property
    def spec(self) -> ArtifactSpec:
        from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS

        return ARTIFACT_SPECS[self]


ARTIFACT_PATHS: dict[ArtifactType, str] = {
    ArtifactType.ALERTS: "inputs/alerts.parquet",
    ArtifactType.PATHS: "truth/paths.parquet",
    ArtifactType.FEATURES: "features/features.parquet",
    ArtifactType.TRADES: "policy/trades.parquet",
    ArtifactType.SUMMARY: "results/summary.parquet",
    ArtifactType.FRONTIER: "results/frontier.parquet",
    ArtifactType.ERRORS: "errors/errors.parquet",
    ArtifactType.EQUITY: "results/equity.parquet",
}
