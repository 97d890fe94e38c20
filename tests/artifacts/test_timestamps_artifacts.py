"""Artifact timestamp columns (``*_ts_ms``, ``t_*_ms``) are epoch ms in the years 1-9999: a
value outside (year 1e8, a seconds value overflowing ms) is a SchemaMismatchError naming
the column, row and value, raised by the writer before any file is written."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from qbtest import path_row, rows, trade_row

from quantbot.artifacts import create_run_directory
from quantbot.errors import SchemaMismatchError

YEAR_1E8_MS = 3_155_760_000_000_000_000
NEG_MS = -1_000_000_000_000  # 1938: a legal epoch-ms value, kept as is (no unit guessing)


def new_run(tmp_path):
    return create_run_directory("policy", base_dir=tmp_path / "runs", durable=False, git=False)


@pytest.mark.parametrize("value", [YEAR_1E8_MS, -YEAR_1E8_MS, 253_402_300_800_000])
def test_trades_timestamp_out_of_range_names_column_row_value(tmp_path, value):
    run = new_run(tmp_path)
    data = rows("trades", 2) + [trade_row(2, exit_ts_ms=value)]
    with pytest.raises(SchemaMismatchError,
                       match=rf"trades: column exit_ts_ms value {value} at row 2 is out of range"):
        run.write_artifact("trades", data)


def test_paths_nullable_timestamp_checked(tmp_path):
    run = new_run(tmp_path)
    data = [path_row(0), path_row(1, t_3x_ms=YEAR_1E8_MS)]
    with pytest.raises(SchemaMismatchError, match=r"column t_3x_ms value .* at row 1"):
        run.write_artifact("paths", data)


def test_negative_epoch_ms_is_kept_as_ms(tmp_path):
    run = new_run(tmp_path)
    entry = run.write_artifact("trades", [trade_row(0, entry_ts_ms=NEG_MS, exit_ts_ms=NEG_MS + 60_000)])
    run.mark_success()
    table = pq.read_table(Path(run.path) / entry.path)
    assert table.column("entry_ts_ms").to_pylist() == [NEG_MS]


def test_durations_are_not_timestamps(tmp_path):
    run = new_run(tmp_path)
    run.write_artifact("trades", [trade_row(0, time_exposed_ms=YEAR_1E8_MS)])


def test_arrow_timestamp_overflowing_ms_names_row_and_value(tmp_path):
    run = new_run(tmp_path)
    table = pa.Table.from_pylist(rows("trades", 3))
    secs = pa.array([1_700_000_000, 1_700_000_001, 2**62], pa.timestamp("s"))
    table = table.set_column(table.column_names.index("entry_ts_ms"), "entry_ts_ms", secs)
    with pytest.raises(SchemaMismatchError,
                       match=rf"column entry_ts_ms value {2**62} \(timestamp\[s\]\) at row 2 is out of range"):
        run.write_artifact("trades", table)


def test_arrow_timestamp_year_1e8_in_seconds(tmp_path):
    run = new_run(tmp_path)
    table = pa.Table.from_pylist(rows("trades", 1))
    secs = pa.array([YEAR_1E8_MS // 1000], pa.timestamp("s"))
    table = table.set_column(table.column_names.index("entry_ts_ms"), "entry_ts_ms", secs)
    with pytest.raises(SchemaMismatchError, match=rf"column entry_ts_ms value {YEAR_1E8_MS} at row 0"):
        run.write_artifact("trades", table)
