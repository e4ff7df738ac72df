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

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from core.store.columns import NAN_CODE

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
    value, all-NaN columns by 0), so that gaps cost nothing in the deltas."""
    rows = np.arange(matrix.shape[0])[:, None]
    last_valid = np.maximum.accumulate(np.where(nan, -1, rows), axis=0)
    first_valid = np.argmax(~nan, axis=0)
    source = np.where(last_valid < 0, first_valid[None, :], last_valid)
    filled = np.take_along_axis(matrix, source, axis=0)
    filled[:, nan.all(axis=0)] = 0
    return filled


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
    filled = _fill_gaps(matrix, nan) if has_nan.any() else matrix
    # Candidate transforms: values, deltas, deltas of deltas (as many as the row count allows).
    series = [filled]
    if rows >= 2:
        series.append(np.diff(filled, axis=0))
    if rows >= 3:
        series.append(np.diff(series[1], axis=0))
    lows = np.stack([s.min(axis=0) for s in series])
    spans = np.stack([s.max(axis=0) for s in series]) - lows
    spread = np.stack([np.abs(s - s.mean(axis=0)).mean(axis=0) for s in series])
    widths = _width_code(spans)
    # Cheapest transform per column: narrowest width first, then the smallest spread (an entropy proxy).
    transform = np.lexsort((spread, widths), axis=0)[0]
    column_index = np.arange(cols)
    width_code = widths[transform, column_index]
    low = lows[transform, column_index]

    payloads: list[bytes] = [b""] * cols
    for t in range(len(series)):
        for code in range(1, 5):
            group = np.flatnonzero((transform == t) & (width_code == code) & ~all_nan)
            if not len(group):
                continue
            width = _WIDTHS[code]
            stored = np.ascontiguousarray(series[t][:, group] - low[group], dtype=_UNSIGNED[width])
            planes = stored.view(np.uint8).reshape(len(stored), len(group), width).transpose(1, 2, 0).tobytes()
            size = len(stored) * width
            for i, j in enumerate(group):
                payloads[j] = planes[i * size : (i + 1) * size]
    modes = bytearray()
    bases: list[int] = []
    masks: list[bytes] = []
    for j in range(cols):
        if all_nan[j]:
            modes.append(_ALL_NAN)
            continue
        t = int(transform[j])
        modes.append(int(width_code[j]) | (t << 4) | (_HAS_MASK if has_nan[j] else 0))
        bases.append(int(filled[0, j]))
        if t == 2:
            bases.append(int(series[1][0, j]))
        bases.append(int(low[j]))
        if has_nan[j]:
            masks.append(np.packbits(nan[:, j]).tobytes())
    body = b"".join(
        [_HEADER.pack(rows, cols), bytes(modes), np.array(bases, dtype="<i8").tobytes(), *payloads, *masks]
    )
    return bytes((FORMAT_VERSION, _ZLIB)) + zlib.compress(body, level)


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
    n_bases = sum(0 if m & _ALL_NAN else (3 if (m >> 4) & 3 == 2 else 2) for m in modes)
    bases = np.frombuffer(body, dtype="<i8", count=n_bases, offset=pos)
    pos += 8 * n_bases
    mask_bytes = (rows + 7) // 8
    # Offsets of every column's bases, payload and mask, so that a subset decodes without the rest.
    layout = []
    base_at, payload_at = 0, pos
    mask_at = pos + sum(
        _WIDTHS[m & 7] * max(rows - ((m >> 4) & 3), 0) for m in modes if not m & _ALL_NAN
    )
    for m in modes:
        if m & _ALL_NAN:
            layout.append(None)
            continue
        t = (m >> 4) & 3
        width = _WIDTHS[m & 7]
        n_bases_j = 3 if t == 2 else 2
        layout.append((m, base_at, payload_at, mask_at if m & _HAS_MASK else None))
        base_at += n_bases_j
        payload_at += width * max(rows - t, 0)
        if m & _HAS_MASK:
            mask_at += mask_bytes
    wanted = range(cols) if columns is None else columns
    out = np.full((rows, len(wanted)), NAN_CODE, dtype=np.int64)
    for out_j, j in enumerate(wanted):
        if j >= cols or layout[j] is None or rows == 0:
            continue
        m, b, p, mask_pos = layout[j]
        t, width = (m >> 4) & 3, _WIDTHS[m & 7]
        count = rows - t
        if width:
            planes = np.frombuffer(body, dtype=np.uint8, count=width * count, offset=p)
            stored = planes.reshape(width, count).T.copy().view(_UNSIGNED[width]).ravel().astype(np.int64)
        else:
            stored = np.zeros(count, dtype=np.int64)
        stored += bases[b + (2 if t == 2 else 1)]
        first = bases[b]
        if t == 0:
            column = stored
        elif t == 1:
            column = np.concatenate(([first], first + np.cumsum(stored)))
        else:
            first_delta = bases[b + 1]
            deltas = np.concatenate(([first_delta], first_delta + np.cumsum(stored)))
            column = np.concatenate(([first], first + np.cumsum(deltas)))
        if mask_pos is not None:
            is_nan = np.unpackbits(np.frombuffer(body, dtype=np.uint8, count=mask_bytes, offset=mask_pos))[:rows]
            column[is_nan.astype(bool)] = NAN_CODE
        out[:, out_j] = column
    return out
