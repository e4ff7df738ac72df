"""A FleetSample crosses threads (poller, writer, alerts, allocations, widgets): none may change it."""

from __future__ import annotations

import numpy as np
import pytest

from gpuops.core.sources.demo import DemoSource
from tests.samples import edited, make_sample


def test_every_array_of_a_built_sample_is_read_only() -> None:
    sample = make_sample(4)
    for name, column in sample.metrics.items():
        with pytest.raises(ValueError, match="read-only"):
            column[0] = 1.0
        assert not column.flags.writeable, name
    with pytest.raises(ValueError, match="read-only"):
        sample.state[0] = 1
    with pytest.raises(TypeError):
        sample.metrics["temp_c"] = np.zeros(4)  # type: ignore[index]  # the mapping itself is frozen


def test_a_source_sample_is_read_only_and_the_source_keeps_polling() -> None:
    source = DemoSource(n_gpus=16, seed=1)
    first = source.poll()
    with pytest.raises(ValueError, match="read-only"):
        first.metrics["util_gpu_pct"][0] = 0.0
    second = source.poll()  # the source builds new columns; the frozen ones are not reused
    assert not second.metrics["util_gpu_pct"].flags.writeable
    assert second.ts > first.ts


def test_an_edited_copy_leaves_the_original_untouched() -> None:
    sample = make_sample(4)
    changed = edited(sample, lambda metrics: metrics["temp_c"].__setitem__(0, 99.0))
    assert changed.metrics["temp_c"][0] == 99.0
    assert sample.metrics["temp_c"][0] == 60.0
