"""Schema versions written into every manifest and artifact footer."""

ARTIFACT_SCHEMA_VERSION = "1.0.0"
MANIFEST_SCHEMA_VERSION = "1.0.0"
