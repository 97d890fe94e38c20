"""Schema versions written into every manifest and artifact footer."""

ARTIFACT_SCHEMA_VERSION = "1.2.0"
MANIFEST_SCHEMA_VERSION = "1.1.0"


def parse_version(text: str) -> tuple[int, ...]:
    """"1.2.0" -> (1, 2, 0); ValueError for anything else."""
    try:
        return tuple(int(p) for p in text.split("."))
    except (ValueError, AttributeError):
        raise ValueError(f"invalid schema version {text!r}") from None
