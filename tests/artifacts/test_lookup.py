"""Run lookup: a full UUID or an unambiguous prefix of at least 8 hex characters, found
through the catalog first and the folders after (git's abbreviated ids)."""

from __future__ import annotations

import pytest
from qbtest import make_run

from quantbot.artifacts import catalog_all_runs, locate_run
from quantbot.artifacts.ops.lookup import run_uri
from quantbot.errors import AmbiguousRunIdError, InvalidRunIdError, RunNotFoundError

A = "0123abcd-0000-4000-8000-000000000001"
B = "0123abcd-1111-4000-8000-000000000002"
C = "fedcba98-2222-4000-8000-000000000003"


@pytest.fixture
def three(base_dir):
    return {rid: make_run(base_dir, run_id=rid).path for rid in (A, B, C)}


@pytest.mark.parametrize("ref", [C, C.upper(), C[:8], C[:13], C[:10], C.replace("-", "")[:20],
                                 f"run_id={C}"])
def test_full_ids_and_prefixes_find_the_run_in_the_folders(three, base_dir, ref):
    assert run_uri(locate_run(ref, base_dir=base_dir)) == three[C]


def test_the_catalog_answers_first_and_folders_complete_it(three, base_dir, catalog):
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert run_uri(locate_run(C[:8], catalog=catalog, base_dir=base_dir)).endswith(
        f"run_id={C}")
    late = make_run(base_dir, run_id="9999aaaa-0000-4000-8000-000000000009")  # not synced
    assert run_uri(locate_run("9999aaaa", catalog=catalog, base_dir=base_dir)) == late.path


def test_a_prefix_shared_by_two_runs_is_ambiguous_and_names_both(three, base_dir, catalog):
    with pytest.raises(AmbiguousRunIdError) as err:
        locate_run("0123abcd", base_dir=base_dir)
    assert A in str(err.value) and B in str(err.value)
    assert run_uri(locate_run("0123abcd-1", base_dir=base_dir)) == three[B]


def test_ambiguity_spans_catalog_and_folders(base_dir, catalog):
    make_run(base_dir, run_id=A)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    make_run(base_dir, run_id=B)  # same 8-character prefix, not yet cataloged
    with pytest.raises(AmbiguousRunIdError):
        locate_run(A[:8], catalog=catalog, base_dir=base_dir)


@pytest.mark.parametrize("ref", ["0123abc", "0123abcz", "../etc/passwd", "", "0123abcd-xyz"])
def test_text_that_cannot_name_a_run_is_refused(base_dir, ref):
    with pytest.raises(InvalidRunIdError):
        locate_run(ref, base_dir=base_dir)


def test_an_unknown_run_is_not_found(three, base_dir, catalog):
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    with pytest.raises(RunNotFoundError, match="aaaaaaaa"):
        locate_run("aaaaaaaa", catalog=catalog, base_dir=base_dir)
