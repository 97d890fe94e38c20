"""One handle per store on S3: the endpoint is configured once, never via the environment."""

from __future__ import annotations

from qbtest import rows

import quantbot


def test_the_s3_endpoint_is_given_once_and_never_read_from_the_environment(
        s3_base, s3_endpoint, tmp_path, monkeypatch):
    for var in ("QUANTBOT_S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    store = quantbot.open_store(s3_base, catalog=tmp_path / "cat.duckdb", s3_endpoint=s3_endpoint)
    with store.create_run("policy", durable=False, git=False) as run:
        run.write_artifact("trades", rows("trades", 4))
    assert store.sync().registered == 1
    handle = store.run(run.run_id)
    assert handle.uri.startswith("s3://")
    assert handle.read("trades").num_rows == 4
    assert store.verify().ok
