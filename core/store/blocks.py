"""The codec of head and keyframe blobs: one poll of one block of GPUs.

Every poll writes one blob per block, so encoding must be cheap for 10,000 GPUs (a few numpy
operations for the whole poll, then one zlib call per block), and reading one GPU's few metrics
out of a blob must be cheap too (series over the newest, not yet compacted, minutes).

A block is an int64 matrix, one row per GPU in ascending gpu_id order; columns gpu_id, then every
metric spec of the layout (state first). Stored as: a version byte, then zlib(level 1) of

    u32 rows, u16 columns, columns x i64 column minimum (over non-NaN values),
    8 byte planes x columns x rows of (value - column minimum) as u64, all-ones = NaN

Subtracting the minimum leaves small numbers whose high byte planes are runs of zeros.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from gpuops.core.store.chunks import ChunkFormatError
from gpuops.core.store.columns import NAN_CODE

BLOCK_FORMAT_VERSION = 2  # chunks.py blobs start with 1
_HEADER = struct.Struct("<IH")
_NAN_STORED = np.iinfo(np.uint64).max
_NO_VALUE = np.iinfo(np.int64).max


def encode_blocks(gpu_ids: np.ndarray, codes: np.ndarray, starts: Sequence[int]) -> list[bytes]:
    """One blob per block: rows of `codes` (quantized GPUs x metric specs, sorted by `gpu_ids`)
    from each of `starts` to the next."""
    matrix = np.column_stack((gpu_ids, codes)).astype("<i8", copy=False)
    nan = matrix == NAN_CODE
    lows = np.minimum.reduceat(np.where(nan, _NO_VALUE, matrix), starts, axis=0)
    lows[lows == _NO_VALUE] = 0  # all-NaN columns
    cols = matrix.shape[1]
    blobs = []
    ends = [*starts[1:], len(matrix)]
    for low, start, end in zip(lows, starts, ends, strict=True):
        stored = (matrix[start:end] - low).view("<u8")
        stored[nan[start:end]] = _NAN_STORED
        planes = stored.view(np.uint8).reshape(end - start, cols, 8).transpose(2, 1, 0).tobytes()
        body = _HEADER.pack(end - start, cols) + low.tobytes() + planes
        blobs.append(bytes((BLOCK_FORMAT_VERSION,)) + zlib.compress(body, 1))
    return blobs


def decode_block(blob: bytes, positions: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(gpu ids, quantized matrix of the metric specs at `positions`, or of all). Positions the
    blob does not have (metrics added after it was written) come back NaN."""
    if not blob or blob[0] != BLOCK_FORMAT_VERSION:
        raise ChunkFormatError("not a gpuops block of a known format version")
    try:
        body = zlib.decompress(blob[1:])
    except zlib.error as exc:
        raise ChunkFormatError(f"corrupt block: {exc}") from None
    rows, cols = _HEADER.unpack_from(body)
    lows = np.frombuffer(body, dtype="<i8", count=cols, offset=_HEADER.size)
    planes = np.frombuffer(body, dtype=np.uint8, count=8 * cols * rows, offset=_HEADER.size + 8 * cols).reshape(8, cols, rows)
    wanted = list(range(cols)) if positions is None else [0, *(p + 1 for p in positions)]
    present = [c for c in wanted if c < cols]
    stored = np.ascontiguousarray(planes[:, present, :].transpose(2, 1, 0)).view("<u8")[:, :, 0]
    values = stored.astype(np.int64) + lows[present]
    values[stored == _NAN_STORED] = NAN_CODE
    if len(present) < len(wanted):
        full = np.full((rows, len(wanted)), NAN_CODE, dtype=np.int64)
        full[:, [i for i, c in enumerate(wanted) if c < cols]] = values
        values = full
    return values[:, 0], values[:, 1:]
