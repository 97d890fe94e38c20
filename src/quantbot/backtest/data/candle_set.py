"""The in-memory candle layout shared by the data loaders and the numeric core.

Candles are grouped per mint and packed end to end (CSR layout) so that the numeric
core (numpy/numba) can walk them without Python objects: block ``j`` (mint ``mints[j]``)
owns rows ``offsets[j]:offsets[j + 1]`` of every column, sorted by ``ts_ms`` ascending,
with no duplicate timestamps within a block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NO_TS = np.iinfo(np.int64).min
"""The "no such time" of an int64 epoch-ms array. Every other value is a valid time: a
negative one is before 1970 (daily stock data since the 1960s), so -1 cannot mean none."""


@dataclass(frozen=True)
class DataNote:
    """A non-fatal data problem found while loading (e.g. duplicate candles dropped): the
    flow writes each one as a warning row of ``errors``."""

    message: str  # one line, naming the source and the first example
    details: dict[str, Any] | None = None  # counts and the example, JSON-friendly


@dataclass(frozen=True)
class CandleSet:
    """OHLCV candles of many mints; times are candle *open* times in epoch ms (UTC)."""

    mints: tuple[str, ...]
    offsets: np.ndarray  # int64, shape (m + 1,)
    ts_ms: np.ndarray  # int64, shape (rows,)
    open: np.ndarray  # float64
    high: np.ndarray  # float64
    low: np.ndarray  # float64
    close: np.ndarray  # float64
    volume: np.ndarray  # float64
    first_ts_ms: np.ndarray  # int64, shape (m,): the mint's first candle in the whole source
    warnings: tuple[DataNote, ...] = ()  # data notes of the load; not part of the fingerprint

    def __post_init__(self) -> None:
        m = len(self.mints)
        if self.offsets.shape != (m + 1,) or self.first_ts_ms.shape != (m,):
            raise ValueError("CandleSet: offsets must have len(mints)+1 entries, first_ts_ms len(mints)")
        rows = int(self.offsets[-1]) if m else 0
        for name in ("ts_ms", "open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != rows:
                raise ValueError(f"CandleSet: column {name} has {len(getattr(self, name))} rows, expected {rows}")

    @property
    def n_rows(self) -> int:
        return int(self.offsets[-1]) if len(self.mints) else 0

    def mint_index(self, mints: list[str] | np.ndarray) -> np.ndarray:
        """Block index of each mint (int64), -1 where the set holds no candles for it."""
        lookup = {m: i for i, m in enumerate(self.mints)}
        return np.fromiter((lookup.get(m, -1) for m in mints), dtype=np.int64, count=len(mints))

    @classmethod
    def empty(cls) -> "CandleSet":
        f = np.empty(0, dtype=np.float64)
        return cls((), np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64), f, f, f, f, f,
                   np.empty(0, dtype=np.int64))
