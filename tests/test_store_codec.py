"""The chunk codec and quantization: exact round trips (NaN included) and a compact result."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpuops.core.store.blocks import decode_block, encode_blocks
from gpuops.core.store.chunks import ChunkFormatError, decode_matrix, encode_matrix
from gpuops.core.store.columns import NAN_CODE, Kind, default_metric_specs, dequantize, quantize
from gpuops.core.telemetry import SAMPLE_METRICS

codes = st.one_of(st.just(NAN_CODE), st.integers(min_value=-(2**60), max_value=2**60))


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40), elements=codes))
def test_any_matrix_round_trips_exactly(matrix: np.ndarray) -> None:
    assert np.array_equal(decode_matrix(encode_matrix(matrix)), matrix)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.int64, st.tuples(st.integers(3, 30), st.integers(2, 6)), elements=codes), st.data())
def test_a_subset_of_columns_decodes_alone(matrix: np.ndarray, data: st.DataObject) -> None:
    wanted = data.draw(st.lists(st.integers(0, matrix.shape[1] - 1), min_size=1, max_size=4))
    assert np.array_equal(decode_matrix(encode_matrix(matrix), wanted), matrix[:, wanted])


def test_columns_beyond_the_blob_read_as_nan() -> None:
    matrix = np.arange(12, dtype=np.int64).reshape(4, 3)
    decoded = decode_matrix(encode_matrix(matrix), [2, 5])
    assert decoded[:, 0].tolist() == [2, 5, 8, 11]
    assert (decoded[:, 1] == NAN_CODE).all()


def test_regular_series_cost_almost_nothing() -> None:
    """Timestamps at a steady interval, a steady counter and a constant: near-zero bytes each."""
    n = 600
    ts = 1_763_798_400_000 + 1000 * np.arange(n)
    counter = 10**9 + 350 * np.arange(n)
    matrix = np.column_stack((ts, counter, np.full(n, 81_920)))
    assert len(encode_matrix(matrix)) < 100


def test_noisy_gauge_compresses_to_about_its_entropy() -> None:
    rng = np.random.default_rng(7)
    util = np.clip(np.round(60 + rng.normal(0, 3, 600)), 0, 100).astype(np.int64)
    # ~3.6 bits of entropy per value: well under one byte per value once encoded.
    assert len(encode_matrix(util[:, None])) < 0.75 * len(util)


def test_garbage_is_refused() -> None:
    with pytest.raises(ChunkFormatError):
        decode_matrix(b"\x01\x01not zlib at all")
    with pytest.raises(ChunkFormatError):
        decode_matrix(b"\x09\x01")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.just(math.nan), st.floats(min_value=-1e12, max_value=1e12)), min_size=1, max_size=20),
    st.sampled_from([0.1, 1.0, 1000.0, float(2**20)]),
)
def test_quantization_keeps_nan_and_stays_within_half_a_step(values: list[float], resolution: float) -> None:
    array = np.array(values)
    back = dequantize(quantize(array, resolution), resolution)
    assert np.array_equal(np.isnan(back), np.isnan(array))
    finite = ~np.isnan(array)
    assert np.all(np.abs(back[finite] - array[finite]) <= resolution / 2 * (1 + 1e-9) + 1e-6 * np.abs(array[finite]))


def test_infinity_cannot_be_stored_and_becomes_nan() -> None:
    assert math.isnan(dequantize(quantize(np.array([math.inf]), 1.0), 1.0)[0])


def test_every_metric_has_a_spec_and_counters_keep_their_last_value() -> None:
    specs = {s.name: s for s in default_metric_specs()}
    assert set(SAMPLE_METRICS) | {"state"} == set(specs)
    assert specs["energy_j"].kind is Kind.COUNTER
    assert specs["ecc_uncorrected_aggregate"].kind is Kind.COUNTER
    assert specs["throttle_reasons_mask"].kind is Kind.BITMASK
    assert specs["power_w"].kind is Kind.GAUGE and specs["power_w"].resolution == 0.1


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 40), st.integers(1, 6)), elements=codes), st.data())
def test_head_blocks_round_trip_whole_and_by_column(codes_matrix: np.ndarray, data: st.DataObject) -> None:
    rows = len(codes_matrix)
    ids = np.arange(rows, dtype=np.int64) * 3 + 1
    cuts = sorted(set(data.draw(st.lists(st.integers(1, rows - 1), max_size=3)) if rows > 1 else []))
    starts = [0, *cuts]
    blobs = encode_blocks(ids, codes_matrix, starts)
    assert len(blobs) == len(starts)
    for blob, start, end in zip(blobs, starts, [*cuts, rows], strict=True):
        got_ids, got = decode_block(blob)
        assert np.array_equal(got_ids, ids[start:end]) and np.array_equal(got, codes_matrix[start:end])
        wanted = data.draw(st.lists(st.integers(0, codes_matrix.shape[1] + 1), min_size=1, max_size=3))
        _, subset = decode_block(blob, wanted)
        for i, position in enumerate(wanted):
            expected = codes_matrix[start:end, position] if position < codes_matrix.shape[1] else NAN_CODE
            assert np.array_equal(subset[:, i], np.broadcast_to(expected, (end - start,)))
