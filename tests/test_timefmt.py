"""gpuops.core.timefmt: the one module that turns epoch seconds into text and text into seconds."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from gpuops.core.timefmt import (
    BadTime,
    BadTimeSpec,
    file_stamp,
    format_ms,
    iso_utc,
    local_time,
    parse_duration,
    parse_iso_ms,
    parse_time,
    utc_month_start_ms,
    utc_time,
)

NEW_YEAR_2026 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def paris_winter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time one hour ahead of UTC, named CET, whatever the machine's own zone."""
    monkeypatch.setenv("TZ", "CET-1")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_iso_utc_is_always_to_the_millisecond() -> None:
    assert iso_utc(NEW_YEAR_2026) == "2026-01-01T00:00:00.000Z"
    assert iso_utc(NEW_YEAR_2026 + 61.25) == "2026-01-01T00:01:01.250Z"


def test_format_ms_shows_milliseconds_only_when_there_are_some() -> None:
    assert format_ms(round(NEW_YEAR_2026 * 1000)) == "2026-01-01T00:00:00Z"
    assert format_ms(round(NEW_YEAR_2026 * 1000) + 5) == "2026-01-01T00:00:00.005Z"


def test_parse_iso_ms_reads_what_format_ms_and_iso_utc_write() -> None:
    ms = round(NEW_YEAR_2026 * 1000) + 1234
    assert parse_iso_ms(format_ms(ms)) == ms
    assert parse_iso_ms(iso_utc(ms / 1000)) == ms


def test_parse_iso_ms_takes_utc_without_an_offset_and_honours_one() -> None:
    assert parse_iso_ms("2026-01-01") == NEW_YEAR_2026 * 1000
    assert parse_iso_ms("2026-01-01T00:00:00") == NEW_YEAR_2026 * 1000
    assert parse_iso_ms(" 2026-01-01T01:00:00+01:00 ") == NEW_YEAR_2026 * 1000
    assert parse_iso_ms("2026-01-01t00:00:00z") == NEW_YEAR_2026 * 1000


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "31/01/2026"])
def test_parse_iso_ms_quotes_what_is_not_iso_8601(text: str) -> None:
    with pytest.raises(BadTime) as caught:
        parse_iso_ms(text)
    assert repr(text) in str(caught.value) and "ISO 8601" in str(caught.value)


@pytest.mark.parametrize("text", ["", "   "])
def test_parse_iso_ms_names_an_empty_time(text: str) -> None:
    with pytest.raises(BadTime, match="empty time"):
        parse_iso_ms(text)


def test_durations() -> None:
    assert parse_duration("15m") == 900 and parse_duration("24h") == 86400 and parse_duration("7d") == 604800
    assert parse_duration("90s") == 90 and parse_duration("2w") == 14 * 86400
    assert parse_duration("1.5h") == 5400 and parse_duration("3y") == 3 * 365 * 86400
    assert parse_duration(" 5 m ") == 300


@pytest.mark.parametrize("text", ["15", "m", "-5m", "1 hour", "", "5M"])
def test_a_bad_duration_is_quoted_with_the_forms_that_work(text: str) -> None:
    with pytest.raises(BadTimeSpec) as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value) and "15m" in str(caught.value)


def test_parse_time_is_a_duration_ago_or_an_iso_time() -> None:
    assert parse_time("2h", now=10_000.0) == 2_800.0
    assert math.isclose(parse_time("30s", now=100.0), 70.0)
    assert parse_time("2026-01-01T00:00:00Z", now=0) == NEW_YEAR_2026
    assert parse_time("2026-01-01T01:00:00+01:00", now=0) == NEW_YEAR_2026


def test_parse_time_refuses_text_that_is_neither() -> None:
    with pytest.raises(BadTimeSpec) as caught:
        parse_time("last tuesday", now=0)
    message = str(caught.value)
    assert "'last tuesday'" in message and "ISO 8601" in message and "duration ago" in message


def test_utc_month_start() -> None:
    mid_march = NEW_YEAR_2026 + (31 + 28 + 14) * 86400 + 3600
    assert format_ms(utc_month_start_ms(mid_march)) == "2026-03-01T00:00:00Z"
    assert utc_month_start_ms(NEW_YEAR_2026) == NEW_YEAR_2026 * 1000
    assert format_ms(utc_month_start_ms(NEW_YEAR_2026 - 1)) == "2025-12-01T00:00:00Z"


def test_utc_time_does_not_depend_on_the_local_zone(paris_winter: None) -> None:
    assert utc_time(NEW_YEAR_2026 + 3723) == "2026-01-01 01:02:03 UTC"


def test_local_time_in_each_shape(paris_winter: None) -> None:
    ts = NEW_YEAR_2026 + 3723  # 01:02:03 UTC = 02:02:03 CET
    assert local_time(ts) == "2026-01-01 02:02:03"
    assert local_time(ts, with_date=False) == "02:02:03"
    assert local_time(ts, with_seconds=False) == "2026-01-01 02:02"
    assert local_time(ts, with_date=False, with_seconds=False) == "02:02"
    assert local_time(ts, with_zone=True) == "2026-01-01 02:02:03 CET"


def test_file_stamp_is_local_and_sorts_by_time(paris_winter: None) -> None:
    assert file_stamp(NEW_YEAR_2026 - 1) == "20260101-005959"
    stamps = [file_stamp(NEW_YEAR_2026 + k * 37_000.0) for k in range(5)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
