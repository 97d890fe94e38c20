"""The first release's call forms keep working, with a DeprecationWarning naming the new one."""

from __future__ import annotations

import pytest
from qbtest import make_run

from quantbot.analysis import compare_runs
from quantbot.artifacts.ops.describe import describe_run


def test_db_keyword_and_old_positional_order_still_work(base_dir, catalog):
    a, b = make_run(base_dir), make_run(base_dir)
    new = compare_runs(a.run_id, b.run_id, catalog=None, base_dir=base_dir)
    with pytest.warns(DeprecationWarning, match="db= is now catalog="):
        old = compare_runs(a.run_id, b.run_id, base_dir=base_dir, db=None)
    assert old == new
    with pytest.warns(DeprecationWarning, match="by keyword"):
        legacy = describe_run(a.run_id, None, base_dir)
    assert legacy == describe_run(a.run_id, base_dir=base_dir)


def test_conflicting_forms_are_a_type_error(base_dir):
    a = make_run(base_dir)
    with pytest.raises(TypeError, match="both db= and catalog="):
        compare_runs(a.run_id, a.run_id, base_dir=base_dir, db=None, catalog=None)
    with pytest.raises(TypeError, match="multiple values"):
        describe_run(a.run_id, None, base_dir, base_dir=base_dir)
