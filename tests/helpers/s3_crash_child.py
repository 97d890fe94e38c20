"""Child for the object-store crash test: a zygote that forks writers on demand.

argv: base_dir. Imports are paid once: each "go" line on stdin forks a writer that prints
"ready PID" and writes runs (several artifacts, one built from batches, a failure every
third run) until it is SIGKILLed; "reap PID" waits for it. The S3 client is created only
in the forked writers, never before a fork.
"""

import os
import sys

from qbtest import alert_row, serve_forks, trade_row

from quantbot.artifacts import create_run_directory

ALERTS = [alert_row(j) for j in range(50)]
BATCHES = [[trade_row(b * 500 + j) for j in range(500)] for b in range(4)]


def write_forever(base: str) -> None:
    print(f"ready {os.getpid()}", flush=True)
    i = 0
    while True:
        i += 1
        try:
            with create_run_directory("policy", base_dir=base, git=False) as run:
                run.write_artifact("alerts", ALERTS)
                with run.artifact_writer("trades") as w:
                    for batch in BATCHES:
                        w.write(batch)
                if i % 3 == 0:
                    raise RuntimeError("planned failure")
                run.write_artifact("errors", [])
        except RuntimeError:
            pass


def main() -> None:
    base = sys.argv[1]
    serve_forks(lambda: write_forever(base))


if __name__ == "__main__":
    main()
