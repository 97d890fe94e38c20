"""Defaults the engine computes with and the optimizer's settings quote (no heavy imports:
the CLI reads them to build its options)."""

TRIM_FRACTION = 0.1
"""Share of trades the robust objective's trimmed mean drops from EACH end."""
