"""Run-id rules and month partitions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from quantbot.artifacts.schema.layout import (
    is_month_partition,
    iso_utc,
    month_partition,
    run_dir_name,
    run_id_from_dir_name,
    validate_run_id,
)
from quantbot.errors import InvalidRunIdError

GOOD = "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_valid_uuid_is_returned_canonical():
    assert validate_run_id(GOOD) == GOOD
    assert validate_run_id(uuid.UUID(GOOD)) == GOOD


def test_uppercase_and_whitespace_are_normalised():
    assert validate_run_id(GOOD.upper()) == GOOD
    assert validate_run_id(f"  {GOOD}\n") == GOOD


@pytest.mark.parametrize("bad", [
    "../x", "../" + GOOD, GOOD + "/..", "..", "", "x", "run-1", GOOD.replace("-", ""),
    "{" + GOOD + "}", GOOD + "0", GOOD[:-1], "0f8fad5b-d9cb-469f-a165-70867728950g",
    "/etc/passwd", GOOD + "\x00", f"{GOOD}/../../etc", "x' OR 1=1 --", None, 123,
])
def test_non_uuids_are_rejected(bad):
    with pytest.raises(InvalidRunIdError) as err:
        validate_run_id(bad)
    assert "invalid run id" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_run_dir_name_validates_before_building():
    assert run_dir_name(GOOD.upper()) == f"run_id={GOOD}"
    with pytest.raises(InvalidRunIdError):
        run_dir_name("../escape")


def test_run_id_from_dir_name():
    assert run_id_from_dir_name(f"run_id={GOOD}") == GOOD
    assert run_id_from_dir_name(f"run_id={GOOD.upper()}") is None
    assert run_id_from_dir_name("run_id=../x") is None
    assert run_id_from_dir_name(GOOD) is None
    assert run_id_from_dir_name(".tmp-run_id=" + GOOD) is None


def test_month_partition_is_utc():
    # 00:30 on Feb 1 in UTC+2 is still January in UTC.
    tz = timezone(timedelta(hours=2))
    assert month_partition(datetime(2024, 2, 1, 0, 30, tzinfo=tz)) == "2024-01"
    # 23:30 on Dec 31 in UTC-5 is already January of the next year in UTC.
    tz = timezone(timedelta(hours=-5))
    assert month_partition(datetime(2023, 12, 31, 23, 30, tzinfo=tz)) == "2024-01"
    assert month_partition(datetime(2024, 3, 15, tzinfo=timezone.utc)) == "2024-03"


@pytest.mark.parametrize("name,ok", [
    ("2024-01", True), ("2024-12", True), ("2024-13", False), ("2024-00", False),
    ("2024-1", False), ("latest", False), ("2024-01x", False),
])
def test_is_month_partition(name, ok):
    assert is_month_partition(name) is ok


def test_iso_utc_has_z_suffix_and_milliseconds():
    tz = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2024, 2, 1, 0, 30, 0, 123456, tzinfo=tz)) == "2024-01-31T22:30:00.123Z"


def test_created_run_lives_in_utc_month_partition(base_dir):
    from qbtest import make_run

    run = make_run(base_dir)
    created = datetime.fromisoformat(run.manifest.created_at.replace("Z", "+00:00"))
    month = created.astimezone(timezone.utc).strftime("%Y-%m")
    assert run.path == str(base_dir / month / f"run_id={run.run_id}")
