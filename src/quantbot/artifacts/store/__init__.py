"""Run folders on a storage backend (local disk or S3): the writer and its completion
protocol, reading runs and artifacts back, and validating one run against its manifest."""
