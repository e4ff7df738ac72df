"""Deterministic randomness for the simulated fleet, keyed by what is asked rather than by
the order of asking, so any moment can be sampled without replaying the ones before it."""

from __future__ import annotations

import zlib

import numpy as np

_UINT64_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer: turns any 64-bit input into well-spread bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


class Hasher:
    """Deterministic uniform numbers keyed by (seed, purpose, integers): the same question
    always gets the same answer, whatever else was asked before."""

    def __init__(self, seed: int) -> None:
        self._seed = int(seed) & _UINT64_MASK

    def unit(self, purpose: str, *keys: np.ndarray | int) -> np.ndarray:
        """Uniform values in [0, 1), one per element of the broadcast keys."""
        start = (self._seed * 0x100000001B3 + zlib.crc32(purpose.encode())) & _UINT64_MASK
        arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(k, dtype=np.int64)) for k in keys))
        h = np.full(arrays[0].shape, start, dtype=np.uint64)
        for key in arrays:
            h = _mix(h ^ (key.astype(np.uint64) + _GOLDEN))
        return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
