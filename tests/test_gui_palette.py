"""Grid colour codes: values on a fixed scale, reserved codes that cannot be mistaken for values."""

from __future__ import annotations

import numpy as np

from gpuops.gui.common import palette


def encode(values, lost=(), no_data=(), stale=None):
    n = len(values)
    mask = lambda idx: np.isin(np.arange(n), list(idx))
    return palette.encode(
        np.array(values, dtype=np.float64), 0.0, 100.0, mask(lost), mask(no_data), None if stale is None else mask(stale)
    ).tolist()


def test_values_map_onto_the_fixed_scale_and_clip():
    top = palette.VALUE_LEVELS - 1
    assert encode([0.0, 50.0, 100.0, -5.0, 250.0]) == [0, round(top / 2), top, 0, top]


def test_missing_lost_and_unknown_get_reserved_codes():
    assert encode([np.nan, 10.0, 20.0], lost=[1], no_data=[2]) == [palette.NO_DATA, palette.LOST, palette.NO_DATA]


def test_stale_gpus_use_the_washed_out_range():
    codes = encode([0.0, 100.0, np.nan, 40.0], lost=[3], stale=[0, 2, 3])
    assert codes == [palette.STALE_BASE, palette.VALUE_LEVELS - 1, palette.NO_DATA, palette.LOST_STALE]


def test_reserved_colours_differ_from_every_value_colour():
    lut = palette.build_lut()
    values = {tuple(c) for c in lut[: palette.VALUE_LEVELS]}
    for code in (palette.NO_DATA, palette.LOST):
        assert tuple(lut[code]) not in values
    assert lut[palette.GAP][3] == 0, "gaps are transparent"
    stale_lut = palette.build_lut(all_stale=True)
    assert (stale_lut[: palette.VALUE_LEVELS] == lut[palette.STALE_BASE : palette.STALE_BASE + palette.VALUE_LEVELS]).all()
    assert not (stale_lut[: palette.VALUE_LEVELS] == lut[: palette.VALUE_LEVELS]).all(axis=1).any()
