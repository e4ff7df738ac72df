"""The columnar codec behind every stored blob: an int64 matrix (rows = samples, columns = quantized
metrics, `NAN_CODE` = NaN) in, a small zlib-compressed byte string out.

Why it is small: each column is stored as the cheapest of its values, its deltas or its deltas of
deltas (timestamps and counters become near-constant; noisy gauges stay as values), minus the
column's minimum, in the narrowest unsigned width that holds the range (0 bytes for a constant),
byte-planes shuffled so zlib sees runs of equal high bytes. NaN positions are a separate bitmap and
are filled with the previous value first, so a missing reading costs a bit, not a jump.

Layout (all little-endian), after the 2-byte prefix `version, compression` comes the compressed body:

    u32 rows, u16 columns
    columns x u8     mode: bits 0-2 width code (0 = constant, 1/2/3/4 = 1/2/4/8 bytes),
                           bits 4-5 transform (0 values, 1 deltas, 2 deltas of deltas),
                           bit 6 has a NaN bitmap, bit 7 all NaN
    per column that is not all NaN: i64 first value, [i64 first delta], i64 minimum of the stored series
    per column: stored series, byte-shuffled
    per column with a bitmap: packbits(is_nan), rows/8 rounded up
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from gpuops.core.store.columns import NAN_CODE

FORMAT_VERSION = 1
_ZLIB = 1
_HEADER = struct.Struct("<IH")
_WIDTHS = (0, 1, 2, 4, 8)
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_HAS_MASK = 0x40
_ALL_NAN = 0x80


class ChunkFormatError(ValueError):
    """A blob that is not a chunk this code can read (corruption or a newer format)."""


def _fill_gaps(matrix: np.ndarray, nan: np.ndarray) -> np.ndarray:
    """Replace NaN codes by the previous value in the column (leading ones by the first valid
    value), so that gaps cost nothing in the deltas. Every column has a valid value."""
    rows = np.arange(matrix.shape[0])[:, None]
    last_valid = np.maximum.accumulate(np.where(nan, -1, rows), axis=0)
    first_valid = np.argmax(~nan, axis=0)
    source = np.where(last_valid < 0, first_valid[None, :], last_valid)
    return np.take_along_axis(matrix, source, axis=0)


def _width_code(span: np.ndarray) -> np.ndarray:
    """Smallest width code whose unsigned range holds each span (0 for span 0)."""
    return np.select([span == 0, span < 2**8, span < 2**16, span < 2**32], [0, 1, 2, 3], default=4)


def encode_matrix(matrix: np.ndarray, *, level: int = 9) -> bytes:
    """Encode an int64 matrix (NAN_CODE marks NaN). `level` is the zlib level: 1 for blobs that are
    rewritten soon (the head), 9 for long-lived chunks."""
    matrix = np.ascontiguousarray(matrix, dtype=np.int64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-d matrix, got shape {matrix.shape}")
    rows, cols = matrix.shape
    if rows == 0:
        return bytes((FORMAT_VERSION, _ZLIB)) + zlib.compress(_HEADER.pack(0, cols) + bytes([_ALL_NAN] * cols), level)
    nan = matrix == NAN_CODE
    has_nan = nan.any(axis=0)
    all_nan = nan.all(axis=0)
    filled = matrix
    if has_nan.any():
        filled = matrix.copy()
        filled[:, all_nan] = 0
        gappy = np.flatnonzero(has_nan & ~all_nan)
        if len(gappy):
            filled[:, gappy] = _fill_gaps(matrix[:, gappy], nan[:, gappy])
    # Candidate transforms: values, deltas, deltas of deltas (as many as the row count allows).
    series = [filled]
    if rows >= 2:
        series.append(np.diff(filled, axis=0))
    if rows >= 3:
        series.append(np.diff(series[1], axis=0))
    lows = np.stack([s.min(axis=0) for s in series])
    widths = _width_code(np.stack([s.max(axis=0) for s in series]) - lows)
    # Cheapest transform per column: the narrowest width, and among equally narrow ones (not
    # constant) the smallest spread around the mean, a cheap proxy for entropy.
    spread = np.zeros(widths.shape)
    narrowest = widths.min(axis=0)
    tied = np.flatnonzero(((widths == narrowest).sum(axis=0) > 1) & (narrowest > 0))
    if len(tied):
        for t, s in enumerate(series):
            part = s[:, tied]
            spread[t, tied] = np.abs(part - part.mean(axis=0)).mean(axis=0)
    transform = np.lexsort((spread, widths), axis=0)[0]
    column_index = np.arange(cols)
    width_code = widths[transform, column_index]
    low = lows[transform, column_index]

    payloads: list[bytes] = [b""] * cols
    group_of = transform * 8 + width_code
    for key in set(group_of[~all_nan & (width_code > 0)].tolist()):
        t, width = key // 8, _WIDTHS[key % 8]
        group = np.flatnonzero((group_of == key) & ~all_nan)
        stored = np.ascontiguousarray(series[t][:, group] - low[group], dtype=_UNSIGNED[width])
        planes = stored.view(np.uint8).reshape(len(stored), len(group), width).transpose(1, 2, 0).tobytes()
        size = len(stored) * width
        for i, j in enumerate(group.tolist()):
            payloads[j] = planes[i * size : (i + 1) * size]
    modes = bytearray()
    bases: list[int] = []
    first_row = filled[0].tolist()
    second_row = series[1][0].tolist() if rows >= 2 else []  # read only by t == 2 columns, which need 2 rows
    lows_list = low.tolist()
    for j, (t, code, gaps, empty) in enumerate(
        zip(transform.tolist(), width_code.tolist(), has_nan.tolist(), all_nan.tolist(), strict=True)
    ):
        if empty:
            modes.append(_ALL_NAN)
            continue
        modes.append(code | (t << 4) | (_HAS_MASK if gaps else 0))
        bases.append(first_row[j])
        if t == 2:
            bases.append(second_row[j])
        bases.append(lows_list[j])
    gappy = np.flatnonzero(has_nan & ~all_nan)
    masks = [np.packbits(nan[:, j]).tobytes() for j in gappy.tolist()]
    body = b"".join(
        [_HEADER.pack(rows, cols), bytes(modes), np.array(bases, dtype="<i8").tobytes(), *payloads, *masks]
    )
    return bytes((FORMAT_VERSION, _ZLIB)) + zlib.compress(body, level)


@functools.lru_cache(maxsize=4096)
def _column_directory(modes: bytes, rows: int) -> tuple[tuple, int]:
    """(mode, index of the first base, payload offset, mask offset or None) of every column (None
    for an all-NaN one), offsets counted from the end of the bases; and the number of bases.
    Cached: chunks of a store share a few layouts, and a report reads thousands of them."""
    layout: list[tuple[int, int, int, int | None] | None] = []
    base_at, payload_at = 0, 0
    mask_at = sum(_WIDTHS[m & 7] * max(rows - ((m >> 4) & 3), 0) for m in modes if not m & _ALL_NAN)
    for m in modes:
        if m & _ALL_NAN:
            layout.append(None)
            continue
        t = (m >> 4) & 3
        layout.append((m, base_at, payload_at, mask_at if m & _HAS_MASK else None))
        base_at += 3 if t == 2 else 2
        payload_at += _WIDTHS[m & 7] * max(rows - t, 0)
        if m & _HAS_MASK:
            mask_at += (rows + 7) // 8
    return tuple(layout), base_at


def decode_matrix(blob: bytes, columns: Sequence[int] | None = None) -> np.ndarray:
    """Decode a blob back to its int64 matrix, or only the given column positions (in that order).
    Positions beyond the blob's column count (metrics added after it was written) come back NaN."""
    if len(blob) < 2 or blob[0] != FORMAT_VERSION or blob[1] != _ZLIB:
        raise ChunkFormatError("not a gpuops chunk of a known format version")
    try:
        body = zlib.decompress(blob[2:])
    except zlib.error as exc:
        raise ChunkFormatError(f"corrupt chunk: {exc}") from None
    rows, cols = _HEADER.unpack_from(body)
    pos = _HEADER.size
    modes = body[pos : pos + cols]
    pos += cols
    layout, n_bases = _column_directory(modes, rows)
    bases = np.frombuffer(body, dtype="<i8", count=n_bases, offset=pos)
    pos += 8 * n_bases
    mask_bytes = (rows + 7) // 8
    wanted = range(cols) if columns is None else columns
    # Column-major, so that each column is decoded in place with cumulative sums.
    out = np.full((rows, len(wanted)), NAN_CODE, dtype=np.int64, order="F")
    for out_j, j in enumerate(wanted):
        if j >= cols or layout[j] is None or rows == 0:
            continue
        m, b, p, mask_pos = layout[j]
        p += pos
        mask_pos = None if mask_pos is None else mask_pos + pos
        t, width = (m >> 4) & 3, _WIDTHS[m & 7]
        count = rows - t
        column = out[:, out_j]
        stored = column[t:]
        if width == 1:
            stored[:] = np.frombuffer(body, dtype=np.uint8, count=count, offset=p)
        elif width:
            planes = np.frombuffer(body, dtype=np.uint8, count=width * count, offset=p).reshape(width, count)
            stored[:] = np.ascontiguousarray(planes.T).view(_UNSIGNED[width])[:, 0]
        else:
            stored[:] = 0
        stored += bases[b + 2] if t == 2 else bases[b + 1]  # the minimum of the stored series
        if t >= 1:
            column[0] = bases[b]
        if t == 2:
            column[1] = bases[b + 1]
            np.cumsum(column[1:], out=column[1:])
        if t >= 1:
            np.cumsum(column, out=column)
        if mask_pos is not None:
            is_nan = np.unpackbits(np.frombuffer(body, dtype=np.uint8, count=mask_bytes, offset=mask_pos), count=rows)
            column[is_nan.view(bool)] = NAN_CODE
    return out
