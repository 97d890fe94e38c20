"""The optimizer on a cluster: the grid's representatives evaluated in chunks on workers.

Why chunks, sized from measurement: one task per policy (~2.5 ms of work at 10,000 alerts)
would be all overhead (a Dask task costs about a millisecond of scheduling and transfer),
and one task per worker would leave no room to balance a slow worker or re-run a lost one.
So the driver first evaluates two batches itself (the probe: the first warms imports and
compiled kernels, the second is timed), then cuts the rest into chunks of about
:data:`TARGET_CHUNK_S` seconds of work — and at least :data:`MIN_CHUNKS_PER_WORKER` chunks per
worker — rounded to whole batches.

Exactness: chunk boundaries fall on batch boundaries, so every policy is simulated in the
same batch as in a local run; each chunk returns its per-policy statistics (every group,
training and validation), its policies' trade fingerprints and each group's best key; the
driver writes them into the same arrays, merges fingerprints in grid order, and simulates
the few best policies once more for their trades. The OptimizationResult — and so the
frontier — is the local one, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from quantbot.backtest.executors import Executor
from quantbot.backtest.optimize.search import (
    GroupResult,
    Progress,
    SearchInputs,
    evaluate_chunk,
    merge_chunk,
)
from quantbot.errors import ExecutorTaskError

TARGET_CHUNK_S = 1.0  # seconds of work per chunk, as measured by the probe
MIN_CHUNKS_PER_WORKER = 4


def chunk_policies(policy_s: float, n: int, n_workers: int, batch: int) -> int:
    """Policies per chunk: the whole number of batches nearest to TARGET_CHUNK_S of work at
    ``policy_s`` seconds per policy, at most ``n / (MIN_CHUNKS_PER_WORKER * n_workers)``
    policies, at least one batch."""
    target = round(TARGET_CHUNK_S / max(policy_s, 1e-9) / batch)
    spread = n // (MIN_CHUNKS_PER_WORKER * max(n_workers, 1)) // batch
    return batch * max(1, min(target, spread))


def evaluate_distributed(executor: Executor, inputs: SearchInputs, groups: list[GroupResult],
                         todo: np.ndarray, policies: Sequence[Any], n_pol: int,
                         on_progress: Progress | None
                         ) -> tuple[list[list[bytes]], dict[str, Any]]:
    """Evaluate the representatives ``todo`` on ``executor``, merging into ``groups``;
    -> (trade fingerprints per chunk in grid order, the execution record)."""
    b = inputs.batch_size
    probe = [todo[:b], todo[b:2 * b]]
    results = [evaluate_chunk(inputs, at, [policies[i] for i in at]) for at in probe]
    timed = results[1] if len(probe[1]) else results[0]
    policy_s = timed.seconds / max(len(timed.at), 1)
    rest = todo[2 * b:]
    size = chunk_policies(policy_s, len(rest), executor.n_workers, b)
    chunks = [rest[i:i + size] for i in range(0, len(rest), size)]
    # grid positions each piece covers, for progress (chunks exist only after 2 probes)
    ends = [int(at[-1]) + 1 for at in probe + chunks if len(at)]
    ends[-1] = n_pol
    spans = np.diff([0, *ends]).tolist()
    for r in results:
        merge_chunk(groups, r)
    done = sum(spans[:len(spans) - len(chunks)])
    if on_progress is not None:
        on_progress(done, n_pol)
    digests: list[list[bytes]] = [r.digests for r in results] + [[] for _ in chunks]
    if chunks:
        shared = executor.share(inputs)
        tasks = [(f"optimize-chunk-{k}", (shared, at, [policies[i] for i in at]))
                 for k, at in enumerate(chunks)]
        for outcome in executor.run(evaluate_chunk, tasks):
            if not outcome.ok:
                raise ExecutorTaskError(f"optimizer {outcome.key} failed on {executor.address}: "
                                        f"{outcome.error_type}: {outcome.error}")
            k = int(outcome.key.rsplit("-", 1)[1])
            merge_chunk(groups, outcome.value)
            digests[len(probe) + k] = outcome.value.digests
            done += spans[len(probe) + k]
            if on_progress is not None:
                on_progress(done, n_pol)
    execution = {"executor": executor.kind, "address": executor.address,
                 "workers": executor.n_workers, "chunks": len(chunks),
                 "chunk_policies": size, "probe_policies": int(sum(len(at) for at in probe)),
                 "policy_ms": 1e3 * policy_s}
    return digests, execution
