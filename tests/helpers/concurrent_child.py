"""Child process for concurrency tests.

argv: "write" BASE N   — write N small completed runs (one failed every 10th)
      "sync" BASE DB SECONDS — run catalog_all_runs in a loop for SECONDS; prints counts
      "query" DB SECONDS — query in a loop; prints how many queries succeeded
A CatalogError (lock timeout) is allowed and counted; anything else is a failure (exit 1).
"""

import sys
import time

from quantbot.artifacts import catalog_all_runs, create_run_directory, query_runs
from quantbot.errors import CatalogError


def trade(i: int) -> dict:
    return {"policy_id": "p", "call_id": f"c{i}", "entry_ts_ms": i, "entry_px": 1.0,
            "exit_ts_ms": i + 1, "exit_px": 1.1, "exit_reason": "take_profit",
            "realized_return_bps": 20.0, "stop_out": False, "max_adverse_excursion_bps": -1.0,
            "time_exposed_ms": 1, "tail_capture": None, "side": "long"}


def main() -> None:
    mode = sys.argv[1]
    if mode == "write":
        base, n = sys.argv[2], int(sys.argv[3])
        for i in range(n):
            run = create_run_directory("policy", base_dir=base, git=False, durable=False)
            try:
                with run:
                    run.write_artifact("trades", [trade(j) for j in range(3)])
                    run.write_artifact("errors", [])
                    if i % 10 == 9:
                        raise RuntimeError("planned")
            except RuntimeError:
                pass
        print("done")
    elif mode == "sync":
        base, db, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
        end = time.monotonic() + seconds
        ok = busy = 0
        while time.monotonic() < end:
            try:
                report = catalog_all_runs(catalog=db, base_dir=base)
                assert not report.invalid, report.invalid
                ok += 1
            except CatalogError as err:
                assert "busy" in str(err), err
                busy += 1
        print(f"syncs {ok} busy {busy}")
    elif mode == "query":
        db, seconds = sys.argv[2], float(sys.argv[3])
        end = time.monotonic() + seconds
        ok = busy = 0
        while time.monotonic() < end:
            try:
                runs = query_runs(db, limit=None)
                assert all(r.status in ("completed", "failed") for r in runs)
                ok += 1
            except CatalogError as err:
                assert "busy" in str(err) or "no tables" in str(err) or "does not exist" in str(err), err
                busy += 1
        print(f"queries {ok} busy {busy}")


if __name__ == "__main__":
    main()
