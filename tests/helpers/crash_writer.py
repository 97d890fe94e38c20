"""Child process for crash tests: writes runs in a loop until it is SIGKILLed.

``--steps-zygote``: a zygote whose "go <base_dir> <scenario> <k>" forks one small durable
run that SIGKILLs itself right before its k-th step boundary (see ``write_one_run``).

argv: base_dir. Each run holds a large trades artifact (write_artifact, one shot), a large
paths artifact through artifact_writer batches, small alerts/errors, manifest updates and,
every third run, a failure instead of completion. Durable mode (fsync) is used, as in
production. Prints "ready" once imports are done so the parent can time the kill.
"""

import contextlib
import os
import signal
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantbot.artifacts import create_run_directory

N_BIG = 300_000
N_BATCH = 50_000


def trades(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "policy_id": pa.array(["p"] * n), "call_id": pc.cast(pa.array(np.arange(n)), pa.string()),
        "entry_ts_ms": rng.integers(0, 2**40, n), "entry_px": rng.random(n),
        "exit_ts_ms": rng.integers(0, 2**40, n), "exit_px": rng.random(n),
        "exit_reason": pa.array(["take_profit"] * n), "realized_return_bps": rng.normal(size=n),
        "stop_out": rng.random(n) > 0.5, "max_adverse_excursion_bps": -rng.random(n),
        "time_exposed_ms": rng.integers(0, 10**8, n), "tail_capture": rng.random(n),
        "side": pa.array(["long"] * n),
    })


def paths_batch(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    hit = rng.random(n) > 0.5
    return pa.table({
        "call_id": pc.cast(pa.array(np.arange(n)), pa.string()), "caller_name": pa.array(["c"] * n),
        "mint": pa.array(["m"] * n), "chain": pa.array(["sol"] * n),
        "interval": pa.array(["1m"] * n), "alert_ts_ms": rng.integers(0, 2**40, n),
        "p0": rng.random(n), "hit_2x": hit,
        "t_2x_ms": pa.array(np.where(hit, 5, 0), mask=~hit), "hit_3x": rng.random(n) > 0.9,
        "t_3x_ms": pa.nulls(n, pa.int64()), "hit_4x": rng.random(n) > 0.99,
        "t_4x_ms": pa.nulls(n, pa.int64()), "dd_bps": -rng.random(n),
        "dd_to_2x_bps": pa.nulls(n, pa.float64()), "alert_to_activity_ms": pa.nulls(n, pa.int64()),
        "peak_multiple": rng.random(n) + 1, "side": pa.array(["long"] * n),
    })


def zygote() -> None:
    """Imports and data once; then forks writers on demand (see qbtest.serve_forks)."""
    from qbtest import serve_forks

    base_dir = sys.argv[2]
    data = trades(N_BIG, 1), paths_batch(N_BATCH, 2)  # built once, inherited by each fork
    serve_forks(lambda: write_forever(base_dir, data))


# The calls that change what is on disk: every step of the completion protocol is one of
# them, so killing right before each one in turn visits every step boundary.
BOUNDARIES = frozenset({os.open, os.write, os.fsync, os.replace, os.rename, os.mkdir,
                        os.unlink, os.link, os.truncate, os.ftruncate})


def write_one_run(base_dir: str, scenario: str, kill_at: str) -> None:
    """One small durable run (``complete`` or ``fail``), SIGKILLed right before its
    ``kill_at``-th boundary call (counted with ``sys.setprofile``: no hook in the code under
    test). ``kill_at`` 0 never kills and prints ``steps <N>``, the number of boundaries."""
    from qbtest import rows

    target, count = int(kill_at), 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event == "c_call" and arg in BOUNDARIES:
            count += 1
            if count == target:
                os.kill(os.getpid(), signal.SIGKILL)

    print(f"started {os.getpid()}", flush=True)
    sys.setprofile(profile)
    try:
        with create_run_directory("policy", base_dir=base_dir, git=False) as run:
            run.write_artifact("trades", rows("trades", 2))
            run.update_manifest(timing={"execution_ms": 1.0})
            if scenario == "fail":
                raise RuntimeError("planned failure")
            run.write_artifact("errors", [])
    except RuntimeError:
        pass
    finally:
        sys.setprofile(None)
    print(f"steps {count}", flush=True)


def main() -> None:
    if sys.argv[1] == "--zygote":
        zygote()
    elif sys.argv[1] == "--steps-zygote":
        import shutil
        import tempfile

        from qbtest import serve_forks

        # One unkilled run first: lazy imports and caches are then paid here, once, not
        # by every (profiled, hence slow) fork.
        warm = tempfile.mkdtemp()
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            write_one_run(warm, "complete", "0")
        shutil.rmtree(warm)
        serve_forks(write_one_run)
    else:
        write_forever(sys.argv[1])


def write_forever(base_dir: str, data=None) -> None:
    import os

    big, batch = data or (trades(N_BIG, 1), paths_batch(N_BATCH, 2))
    print(f"ready {os.getpid()}", flush=True)
    i = 0
    while True:
        i += 1
        # a small run first, so that kills also land after some runs completed
        with create_run_directory("policy", base_dir=base_dir, git=False) as small:
            small.write_artifact("trades", big.slice(0, 10))
            small.write_artifact("errors", [])
        run = create_run_directory("full", base_dir=base_dir, git=False,
                                   parameters={"i": i}, dataset={"interval": "1m"})
        try:
            with run:
                run.write_artifact("alerts", [{"call_id": "a", "mint": "m", "caller_name": "c",
                                               "chain": "sol", "alert_ts_ms": i,
                                               "created_at": "x", "side": "long"}])
                run.write_artifact("trades", big)
                run.update_manifest(timing={"execution_ms": float(i)})
                with run.artifact_writer("paths") as w:
                    for _ in range(4):
                        w.write(batch)
                run.write_artifact("errors", [])
                if i % 3 == 0:
                    raise RuntimeError(f"planned failure {i}")
        except RuntimeError:
            pass


if __name__ == "__main__":
    main()
