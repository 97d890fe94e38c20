"""Inputs of a flow: alert and candle sources (CSV, Parquet, DuckDB), column resolution,
fingerprints for provenance, and the bundled sample data."""
