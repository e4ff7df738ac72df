"""What each kind of chunk holds, on top of the matrix codec in `chunks.py` (head and keyframe
blocks have their own codec, `blocks.py`).

- raw chunk: one GPU over one raw window; columns ts_ms, then every metric spec, one row per poll.
- rollup chunk: one GPU over one rollup window; columns ts_ms (bucket start), n (polls in the
  bucket), then the rollup stats of every metric spec, one row per bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gpuops.core.store.chunks import decode_matrix, encode_matrix
from gpuops.core.store.columns import NAN_CODE, Stat, dequantize, quantize
from gpuops.core.store.layout import StoreLayout
from gpuops.core.store.rollup import Frame


def encode_raw_chunk(ts_ms: np.ndarray, codes: np.ndarray) -> bytes:
    return encode_matrix(np.column_stack((ts_ms, codes)))


def decode_raw_chunk(blob: bytes, layout: StoreLayout, metrics: Sequence[str]) -> Frame:
    positions = [_position(layout, name) for name in metrics]
    matrix = decode_matrix(blob, [0, *(p + 1 for p in positions)])
    columns = {
        name: dequantize(matrix[:, i + 1], layout.metrics[p].resolution)
        for i, (name, p) in enumerate(zip(metrics, positions, strict=True))
    }
    return Frame(matrix[:, 0], np.ones(len(matrix), np.int64), columns, raw=True)


def block_codes_to_frame(ts_ms: np.ndarray, codes: np.ndarray, layout: StoreLayout, metrics: Sequence[str]) -> Frame:
    """Rows of one GPU gathered from head blocks (all metric specs, quantized) as a raw frame."""
    columns = {name: dequantize(codes[:, _position(layout, name)], layout.spec(name).resolution) for name in metrics}
    return Frame(ts_ms, np.ones(len(ts_ms), np.int64), columns, raw=True)


#: Averages keep one more decimal than the metric's resolution: a mean of whole percents is 27.5 %.
AVG_EXTRA_PRECISION = 10


def _step(layout: StoreLayout, metric: str, stat: Stat) -> float:
    resolution = layout.spec(metric).resolution
    return resolution / AVG_EXTRA_PRECISION if stat is Stat.AVG else resolution


def encode_rollup_chunk(frame: Frame, layout: StoreLayout) -> bytes:
    matrix = np.empty((len(frame), len(layout.rollup_columns) + 1), dtype=np.int64)
    matrix[:, 0] = frame.ts_ms
    matrix[:, 1] = frame.count
    for j, (metric, stat) in enumerate(layout.rollup_columns[1:], start=2):
        matrix[:, j] = quantize(frame.columns[(metric, stat)], _step(layout, metric, stat))
    return encode_matrix(matrix)


def decode_rollup_chunk(blob: bytes, layout: StoreLayout, columns: Sequence[tuple[str, Stat]]) -> Frame:
    index = layout.rollup_column_index
    matrix = decode_matrix(blob, [0, 1, *(index[c] for c in columns)])
    count = matrix[:, 1].copy()
    count[count == NAN_CODE] = 0
    values = dequantize(matrix[:, 2:], np.array([_step(layout, *c) for c in columns]))
    return Frame(matrix[:, 0], count, {c: values[:, j] for j, c in enumerate(columns)}, raw=False)


def _position(layout: StoreLayout, name: str) -> int:
    for position, spec in enumerate(layout.metrics):
        if spec.name == name:
            return position
    raise KeyError(f"unknown metric {name!r}")
