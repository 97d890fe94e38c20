"""One row of the benchmark table: a measurement, its same-run baseline and its target."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class BenchResult:
    name: str
    measured: float  # seconds (or the unit below)
    target: str  # human-readable target, e.g. "<= 0.100 s" or ">= 0.9x baseline"
    ok: bool
    baseline: str | None = None  # what the ratio is taken against, measured in the same run
    baseline_measured: float | None = None
    unit: str = "s"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """measured / baseline (for times: < 1 means faster than the baseline)."""
        if self.baseline_measured in (None, 0):
            return None
        return self.measured / self.baseline_measured


def wall_times(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of each of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (the machine is shared and noisy)."""
    return min(wall_times(fn, repeat))


def best_paired(fns: list[Callable[[], object]], repeat: int = 3) -> list[float]:
    """Best wall time of each of ``fns``, called in turn (A B C A B C ...): a ratio of two
    of them then compares calls made at the same moment of a machine whose speed drifts."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, seen in zip(fns, times):
            seen.extend(wall_times(fn, 1))
    return [min(seen) for seen in times]


def median_of(fn: Callable[[], object], repeat: int = 21) -> float:
    return statistics.median(wall_times(fn, repeat))
