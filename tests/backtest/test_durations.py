from datetime import timedelta

import numpy as np
import pytest

from quantbot.durations import (
    format_duration,
    parse_age,
    parse_duration,
    parse_interval,
)
from quantbot.errors import DataError


@pytest.mark.parametrize("text, ms", [("90s", 90_000), ("15m", 900_000), ("6h", 21_600_000),
                                      ("5d", 432_000_000), ("2w", 1_209_600_000), ("1500ms", 1_500), ("0s", 0), (" 1m ", 60_000)])
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "15", "1.5h", "1h30m", "-5m", "5 minutes", "m", "5y", None, 5])
def test_parse_duration_rejects(text):
    with pytest.raises(DataError, match="invalid duration"):
        parse_duration(text)


def test_parse_interval_accepts_any_positive_duration():  # since issue 10
    assert [parse_interval(i) for i in ("1s", "15s", "2m", "90m", "4h", "1d", "1w")] == [
        1_000, 15_000, 120_000, 5_400_000, 14_400_000, 86_400_000, 604_800_000]


@pytest.mark.parametrize("ms, text", [(90_000, "90s"), (5_400_000, "90m"), (86_400_000, "1d"),
                                      (1_500, "1500ms"), (0, "0s"), (np.int64(3_600_000), "1h")])
def test_format_duration(ms, text):
    assert format_duration(ms) == text
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1m"])
def test_format_duration_rejects(bad):
    with pytest.raises(DataError):
        format_duration(bad)


@pytest.mark.parametrize("text, delta", [
    ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)), ("2w", timedelta(days=14)), ("1.5d", timedelta(hours=36)),
    (timedelta(hours=1), timedelta(hours=1))])
def test_parse_age_accepts_gc_forms(text, delta):
    assert parse_age(text) == delta


@pytest.mark.parametrize("text", ["tomorrow", "24", "5ms", "1h30m", "-1d", ""])
def test_parse_age_rejects(text):
    with pytest.raises(DataError, match="^invalid age"):
        parse_age(text)


def test_parse_age_too_large():
    with pytest.raises(DataError, match="too large"):
        parse_age("99999999999w")
