"""The cached exposition reader gives exactly what prometheus_client's parser gives, poll after poll."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuops.core.sources.exposition import ExpositionError, ExpositionReader

TEXT = """# HELP a_metric something
# TYPE a_metric gauge
a_metric{gpu="0",modelName="NVIDIA H100 80GB HBM3",note="a } brace"} 1.5
a_metric{gpu="1",modelName="NVIDIA H100 80GB HBM3",note="a } brace"} 2 1700000000000
plain_total 7
other{x="y"} NaN
"""


def _reader() -> ExpositionReader:
    return ExpositionReader(lambda name, labels: None if name == "other" else (name, tuple(sorted(labels.items()))))


def _parser_view(text: str) -> list:
    return [((s.name, tuple(sorted(s.labels.items()))), float(s.value))
            for f in text_string_to_metric_families(text) for s in f.samples if s.name != "other"]


def test_same_answer_as_the_parser_cold_and_warm() -> None:
    reader = _reader()
    assert reader.read(TEXT) == _parser_view(TEXT)
    changed = TEXT.replace("} 1.5", "} 3.25").replace("plain_total 7", "plain_total 8")
    assert sorted(reader.read(changed)) == sorted(_parser_view(changed))


def test_a_bad_line_is_named_even_after_the_series_was_cached() -> None:
    reader = _reader()
    reader.read(TEXT)
    with pytest.raises(ExpositionError, match="line 4"):
        reader.read(TEXT.replace("} 2 1700000000000", "} two"))
    with pytest.raises(ExpositionError, match="line 3"):
        _reader().read(TEXT.replace('gpu="0",', 'gpu="0",...,'))
