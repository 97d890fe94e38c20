"""A run.json read while a running writer replaces it: pyarrow reads an object as a size,
then byte ranges, so the read can join two versions. It must not count as invalid."""

from __future__ import annotations

import threading

from qbtest import alert_row

from quantbot.artifacts import create_run_directory
from quantbot.artifacts.store.backends import open_storage
from quantbot.artifacts.store.validate import read_run_manifest


def test_a_run_json_replaced_during_a_read_is_read_again(moto_server, stall_proxy):
    bucket = moto_server.bucket()
    direct = open_storage(f"s3://{bucket}/runs", endpoint_url=moto_server.endpoint)
    run = create_run_directory("policy", base_dir=direct, git=False, durable=False)
    run.write_artifact("alerts", [alert_row(0)])
    path = f"{run.path.removeprefix('s3://')}/run.json"
    # the reader's ranged GET of run.json is held 1.5 s, after its size was taken
    proxy = stall_proxy(moto_server.port, rb"GET /[^ ]*/run\.json", 1.5)
    proxied = open_storage(f"s3://{bucket}/runs", endpoint_url=proxy.endpoint)
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(_read(proxied, path)))
    reader.start()
    while not proxy.matched:  # the GET is on hold: now the writer replaces run.json
        threading.Event().wait(0.01)
    run.update_manifest(parameters={"note": "x" * 2_000})  # longer than the first version
    reader.join(30)
    assert not reader.is_alive()
    (manifest,) = got
    assert not isinstance(manifest, Exception), manifest
    assert manifest.parameters.model_dump()["note"] == "x" * 2_000  # type: ignore[union-attr]


def _read(storage, path):
    try:
        return read_run_manifest(storage, path)
    except Exception as err:  # noqa: BLE001 - handed to the test thread
        return err
