"""The contract of a run, with no I/O: artifact types and their Arrow schemas, the
``run.json`` model, run-id and folder-name rules, casting input to a schema, migrations."""
