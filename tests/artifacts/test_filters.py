"""The run filter language against an independent evaluator over the runs on disk.

A corpus of real runs (random types, statuses, branches, nested parameters, summaries with
missing metrics) is written once, cataloged into a real DuckDB file, given tags, names and
deletions directly in the label tables; hypothesis then draws filter ASTs, renders them to
text and compares ``list_runs`` with a plain-Python evaluation of the same AST over the
manifests and summary files read from disk, under SQL's three-valued logic.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qbtest import catalog_fingerprint, make_run, rows

from quantbot.artifacts import read_manifest
from quantbot.artifacts.catalog import catalog_all_runs, list_runs, validate_filter
from quantbot.artifacts.schema.manifest import RUN_TYPES
from quantbot.errors import FilterError

N_RUNS = 30
SPLIT_RANK = {"validation": 0, "all": 1, "train": 2}


def _corpus_params(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {"policy_id": rng.choice(["p1", "p2", "fixed_stop", "it's"])}
    if rng.random() < 0.8:
        params["policy"] = {"sl": rng.choice([0.1, 0.2, 0.25, 1, 3]),
                            "kind": rng.choice(["fixed", "trail", "Fixed%"])}
    if rng.random() < 0.6:
        params["flag"] = rng.random() < 0.5
    if rng.random() < 0.5:
        params["n"] = rng.choice([-2, 0, 5, 10])
    if rng.random() < 0.3:
        params["levels"] = [1, 2]
    return params


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Any]:
    rng = random.Random(12)
    root = tmp_path_factory.mktemp("filters")
    base, db = root / "runs", root / "cat.duckdb"
    labels: dict[str, dict[str, Any]] = {}
    for i in range(N_RUNS):
        summary = []
        if rng.random() < 0.75:
            splits = rng.sample([None, "all", "validation", "train"], rng.choice([1, 2]))
            if None in splits:
                splits = [None]
            for s in splits:
                summary.append(rows("summary", 1, split=s,
                                    median_return_bps=rng.choice([None, -12.5, 0.0, 5.0, 40.0]),
                                    sharpe=rng.choice([None, -0.5, 1.25, 2.0]),
                                    trades_count=rng.choice([0, 3, 9]))[0])
            summary.append(rows("summary", 1, caller_name="alice", median_return_bps=999.0)[0])
        run = make_run(base, rng.choice(RUN_TYPES), complete=False, parameters=_corpus_params(rng),
                       dataset={"interval": rng.choice(["1m", "5m"]),
                                "calls_count": rng.choice([0, 10, 300])},
                       artifacts={"trades": rows("trades", 2), "summary": summary})
        run.update_manifest(git_branch=rng.choice(["main", "exp/fees", "exp/Fees_2"]),
                            git_dirty=rng.choice([True, False]))
        if rng.random() < 0.25:
            err = ValueError(rng.choice(["boom", "bad 'input' -- here"]))
            err.quantbot_phase = rng.choice(["execution", "store"])  # what the flows set
            run.mark_failure(err)
        else:
            run.mark_success()
        labels[run.run_id] = {
            "name": rng.choice([None, f"run {i}", "baseline"]),
            "deleted": rng.random() < 0.15,
            "notes_count": rng.choice([0, 0, 2]),
            "tags": {k: v for k, v in (("round", rng.choice(["1", "2", "10"])),
                                       ("owner", rng.choice(["ann", "bob"]))) if rng.random() < 0.6},
        }
    assert catalog_all_runs(catalog=db, base_dir=base).registered == N_RUNS
    with duckdb.connect(str(db)) as con:
        for rid, lab in labels.items():
            if lab["name"] or lab["deleted"] or lab["notes_count"]:
                con.execute("INSERT INTO run_labels VALUES (?, ?, ?, ?, ?)",
                            [rid, lab["name"], datetime(2026, 1, 1) if lab["deleted"] else None,
                             lab["notes_count"], None])
            for k, v in lab["tags"].items():
                con.execute("INSERT INTO run_tags VALUES (?, ?, ?)", [rid, k, v])
    return {"db": db, "runs": _read_from_disk(base, labels)}


def _read_from_disk(base: Path, labels: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything the evaluator needs, from run.json and summary.parquet (not the catalog)."""
    out = []
    for manifest_path in sorted(base.rglob("run.json")):
        m = read_manifest(manifest_path.parent)
        metrics: dict[str, Any] = {}
        if "summary" in m.artifacts:
            table = pq.read_table(manifest_path.parent / m.artifacts["summary"].path).to_pylist()
            pooled = [r for r in table if r["caller_name"] in (None, "*")]
            pooled.sort(key=lambda r: (SPLIT_RANK.get(r.get("split"), 9), r["policy_id"]))
            if pooled:
                metrics = pooled[0]
        out.append({"manifest": m, "metrics": metrics, **labels[m.run_id]})
    return out


# -- the independent evaluator ----------------------------------------------------------

def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def _leaf(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return None if isinstance(tree, dict) else tree


def _value(run: dict[str, Any], field: str, kind: str) -> Any:
    """The field's value for a literal of ``kind`` ("number"/"string"/"bool"/"ts")."""
    m = run["manifest"]
    prefix, _, key = field.partition(".")
    if prefix in ("params", "dataset"):
        tree = m.parameters.model_dump(exclude_none=True) if prefix == "params" else \
            m.dataset.model_dump(by_alias=True, exclude_none=True)
        v = _leaf(tree, key)
        if v is None:
            return None
        if kind == "number":
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    if prefix == "metrics":
        v = run["metrics"].get(key)
        return float(v) if isinstance(v, int | float) and kind == "number" else v
    if prefix == "tags":
        return run["tags"].get(key)
    if field == "error":
        return f"{m.error.type}: {m.error.message}" if m.error else None
    if field == "error_phase":
        return m.error.phase if m.error else None
    if field == "name":
        return run["name"]
    if field == "notes_count":
        return float(run["notes_count"])
    if field == "created_at":
        return _ts(m.created_at)
    if field == "git_dirty":  # compared only with = and != to a boolean (as its text)
        return None if m.git_dirty is None else ("true" if m.git_dirty else "false")
    return getattr(m, field)


def _bind(lit: tuple[str, Any]) -> Any:
    kind, v = lit
    return ("true" if v else "false") if kind == "bool" else v


def _day(text: str) -> tuple[datetime, datetime]:
    if len(text) == 10:
        start = datetime.fromisoformat(text)
        return start, start + timedelta(days=1) - timedelta(microseconds=1)
    return _ts(text), _ts(text)


def _cmp(v: Any, op: str, lit: tuple[str, Any]) -> bool | None:
    if v is None:
        return None
    if lit[0] == "ts":
        first, last = _day(lit[1])
        return {"<": v < first, "<=": v <= last, ">": v > last, ">=": v >= first,
                "=": first <= v <= last, "!=": not first <= v <= last}[op]
    x = _bind(lit)
    return {"=": v == x, "!=": v != x, "<": v < x, "<=": v <= x, ">": v > x, ">=": v >= x}[op]


def _not(x: bool | None) -> bool | None:
    return None if x is None else not x


def evaluate(node: tuple, run: dict[str, Any]) -> bool | None:
    op = node[0]
    if op == "and":
        a, b = evaluate(node[1], run), evaluate(node[2], run)
        return False if a is False or b is False else (None if a is None or b is None else True)
    if op == "or":
        a, b = evaluate(node[1], run), evaluate(node[2], run)
        return True if a is True or b is True else (None if a is None or b is None else False)
    if op == "not":
        return _not(evaluate(node[1], run))
    field = node[1]
    if op == "isnull":
        return (_value(run, field, "string") is None) != node[2]
    if op == "cmp":
        return _cmp(_value(run, field, node[3][0]), node[2], node[3])
    if op == "in":
        v = _value(run, field, node[2][0][0])
        if v is None:
            return None
        hit = any(_cmp(v, "=", lit) for lit in node[2])
        return hit != node[3]
    v = _value(run, field, "string")
    if v is None:
        return None
    if op == "like":
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in node[2])
        hit = re.fullmatch(regex, v, re.DOTALL | (re.IGNORECASE if node[4] else 0)) is not None
    else:  # regex
        hit = re.search(node[2], v) is not None
    return hit != node[3]


# -- rendering a drawn AST as filter text -----------------------------------------------

def _kw(word: str, case: int) -> str:
    return [word, word.lower(), word.capitalize()][case]


def _lit(lit: tuple[str, Any]) -> str:
    kind, v = lit
    if kind == "number":
        return repr(v)
    if kind == "bool":
        return "true" if v else "FALSE"
    return "'" + str(v).replace("'", "''") + "'"


def render(node: tuple, case: int) -> str:
    op = node[0]
    if op in ("and", "or"):
        return f"({render(node[1], case)} {_kw(op.upper(), case)} {render(node[2], case)})"
    if op == "not":
        return f"{_kw('NOT', case)} ({render(node[1], case)})"
    f = node[1]
    if op == "isnull":
        return f"{f} {_kw('IS', case)} {_kw('NOT', case) + ' ' if node[2] else ''}{_kw('NULL', case)}"
    if op == "cmp":
        return f"{f} {node[2]} {_lit(node[3])}"
    neg = _kw("NOT", case) + " " if node[3] else ""
    if op == "in":
        return f"{f} {neg}{_kw('IN', case)} ({', '.join(_lit(x) for x in node[2])})"
    if op == "like":
        return f"{f} {neg}{_kw('ILIKE' if node[4] else 'LIKE', case)} {_lit(('string', node[2]))}"
    return f"{f} {'!~' if node[3] else '~'} {_lit(('string', node[2]))}"


TEXT_FIELDS = {
    "run_type": list(RUN_TYPES), "status": ["completed", "failed"],
    "git_branch": ["main", "exp/fees", "exp/Fees_2", "exp"], "name": ["baseline", "run 3"],
    "error": ["ValueError: boom"], "error_phase": ["execution", "store"],
    "tags.round": ["1", "2", "10"], "tags.owner": ["ann", "bob"], "tags.nope": ["x"],
    "params.policy_id": ["p1", "p2", "it's"], "params.policy.kind": ["fixed", "Fixed%"],
    "params.flag": ["true"], "params.levels": ["[1, 2]"], "params.policy.sl": ["0.2", "1"],
    "dataset.interval": ["1m", "5m"], "metrics.split": ["all", "validation", "train"],
    "metrics.policy_id": ["p0"],
}
NUMBER_FIELDS = {
    "metrics.median_return_bps": [-12.5, 0.0, 5.0, 40.0, 999.0],
    "metrics.sharpe": [-0.5, 1.25, 2.0], "metrics.trades_count": [0.0, 3.0, 9.0],
    "params.policy.sl": [0.1, 0.2, 1.0, 3.0], "params.n": [-2.0, 0.0, 5.0],
    "dataset.calls_count": [0.0, 10.0, 300.0], "notes_count": [0.0, 2.0],
    "params.policy_id": [1.0],
}
BOOL_FIELDS = ["git_dirty", "params.flag", "params.nothing"]
PATTERNS = ["%", "p%", "%fees%", "exp_%", "%'%", "F%", "_1", "fixed%"]
REGEXES = ["^p", "s$", "e.s", "1|2", "[0-9]", "^exp/[a-z]+$", "'"]
OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def leaf() -> st.SearchStrategy[tuple]:
    text_field = st.sampled_from(sorted(TEXT_FIELDS))
    num_field = st.sampled_from(sorted(NUMBER_FIELDS))
    text_cmp = text_field.flatmap(lambda f: st.tuples(
        st.just("cmp"), st.just(f), OPS, st.sampled_from(TEXT_FIELDS[f]).map(lambda v: ("string", v))))
    num_cmp = num_field.flatmap(lambda f: st.tuples(
        st.just("cmp"), st.just(f), OPS, st.sampled_from(NUMBER_FIELDS[f]).map(lambda v: ("number", v))))
    bool_cmp = st.tuples(st.just("cmp"), st.sampled_from(BOOL_FIELDS), st.sampled_from(["=", "!="]),
                         st.booleans().map(lambda v: ("bool", v)))
    days = st.sampled_from([-1, 0, 1]).map(
        lambda d: (datetime.now(UTC).date() + timedelta(days=d)).isoformat())
    ts_cmp = st.tuples(st.just("cmp"), st.just("created_at"), OPS, st.one_of(
        days, st.just(_today() + "T00:00:00Z"), st.just("2000-01-01T00:00:00+02:00")).map(
            lambda v: ("ts", v)))
    text_in = text_field.flatmap(lambda f: st.tuples(
        st.just("in"), st.just(f), st.lists(st.sampled_from(TEXT_FIELDS[f]).map(
            lambda v: ("string", v)), min_size=1, max_size=3).map(tuple), st.booleans()))
    num_in = num_field.flatmap(lambda f: st.tuples(
        st.just("in"), st.just(f), st.lists(st.sampled_from(NUMBER_FIELDS[f]).map(
            lambda v: ("number", v)), min_size=1, max_size=3).map(tuple), st.booleans()))
    like = st.tuples(st.just("like"), text_field, st.sampled_from(PATTERNS), st.booleans(),
                     st.booleans())
    regex = st.tuples(st.just("regex"), text_field, st.sampled_from(REGEXES), st.booleans())
    isnull = st.tuples(st.just("isnull"), st.sampled_from(
        [*TEXT_FIELDS, *NUMBER_FIELDS, "params.policy", "params.nothing"]), st.booleans())
    return st.one_of(text_cmp, num_cmp, bool_cmp, ts_cmp, text_in, num_in, like, regex, isnull)


filters = st.recursive(leaf(), lambda kids: st.one_of(
    st.tuples(st.just("and"), kids, kids), st.tuples(st.just("or"), kids, kids),
    st.tuples(st.just("not"), kids)), max_leaves=6)


@pytest.fixture(scope="module")
def reader(corpus):
    """One read-only connection for the many filters (opening the file costs more than the
    query; the guarded path is the same SQL, tested on a path below)."""
    con = duckdb.connect(str(corpus["db"]), read_only=True)
    yield con
    con.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(node=filters, case=st.integers(0, 2), deleted=st.sampled_from(["hide", "include", "only"]))
def test_filter_matches_python_evaluation(corpus, reader, node, case, deleted):
    text = render(node, case)
    got = list_runs(reader, text, limit=None, include_deleted=deleted == "include",
                    only_deleted=deleted == "only")
    keep = {"hide": lambda r: not r["deleted"], "include": lambda r: True,
            "only": lambda r: r["deleted"]}[deleted]
    want = {r["manifest"].run_id for r in corpus["runs"] if keep(r) and evaluate(node, r) is True}
    assert {r["run_id"] for r in got.runs} == want, text
    assert got.total == len(want)


def test_a_path_and_a_connection_give_the_same_listing(corpus, reader, tmp_path):
    text = "metrics.median_return_bps >= 0 OR tags.round IN ('1', '10')"
    shutil.copyfile(corpus["db"], tmp_path / "copy.duckdb")  # the reader holds the original
    by_path = list_runs(tmp_path / "copy.duckdb", text, order_by="params.policy.sl DESC", limit=None)
    assert by_path == list_runs(reader, text, order_by="params.policy.sl DESC", limit=None)
    assert 0 < by_path.total < N_RUNS


def test_corpus_covers_the_interesting_cases(corpus):
    """The property test means something only if the corpus has missing values."""
    runs = corpus["runs"]
    assert any(r["metrics"] == {} for r in runs) and any(r["metrics"] for r in runs)
    assert any(r["metrics"].get("median_return_bps") is None for r in runs if r["metrics"])
    assert any(r["manifest"].status == "failed" for r in runs)
    assert any(r["deleted"] for r in runs) and any(r["tags"] for r in runs)
    assert any(r["metrics"].get("split") == "validation" for r in runs)


@pytest.mark.parametrize("text, message", [
    ("status = 'failed' AN created_at < '2026-11-01'", "filter: unexpected 'AN' at column 19"),
    ("status = ", "filter: unexpected end of filter (expected a value)"),
    ("(status = 'x'", "filter: unexpected end of filter (expected ')')"),
    ("stauts = 'failed'", "filter: unknown field 'stauts' (did you mean: status?)"),
    ("metrics.sharpee > 1", "filter: unknown field 'metrics.sharpee' (did you mean: metrics.sharpe"),
    ("metrics.sharpe > 'high'", "filter: metrics.sharpe is a number, got text 'high' at column 18"),
    ("status = 3", "filter: status is text, got number 3 at column 10"),
    ("created_at < 'last week'", "filter: invalid created_at 'last week'"),
    ("name ~ '('", "filter: invalid regular expression '(' at column 8"),
    ("status = 'it''s", "filter: unterminated string at column 14"),
    ("status $ 'x'", "filter: unexpected '$' at column 8"),
    ("status = null", "filter: compare with null using IS NULL"),
    ("params = 1", "filter: field 'params' needs a key"),
    ("metrics.sharpe LIKE 'x%'", "filter: LIKE needs a text field"),
    ("params.a IN (1, 'x')", "filter: IN values of params.a mix numbers and text"),
    ("status NOT = 'x'", "filter: unexpected '=' at column 12"),
    ("", "filter: unexpected end of filter (expected a field)"),
])
def test_errors_are_one_line_with_the_column(text, message):
    with pytest.raises(FilterError) as err:
        validate_filter(text)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


INJECTIONS = ["'; DROP TABLE backtest_runs_catalog; --", "x' OR 1=1 --", "/* c */ 1", "a\\b",
              "ünï\u2028cødé", "\"quoted\"", "%' OR '1'='1", ")) OR true --"]


def test_injection_strings_are_literals(corpus, tmp_path):
    db = tmp_path / "cat.duckdb"  # a copy: the module's reader keeps the original open
    shutil.copyfile(corpus["db"], db)
    before = catalog_fingerprint(db)
    with duckdb.connect(str(db)) as con:  # a run tagged with hostile keys and values
        rid = corpus["runs"][0]["manifest"].run_id
        for i, s in enumerate(INJECTIONS):
            con.execute("INSERT INTO run_tags VALUES (?, ?, ?)", [rid, f"evil{i}", s])
            con.execute("INSERT INTO run_tags VALUES (?, ?, ?)", [rid, s, "k"])
    try:
        for i, s in enumerate(INJECTIONS):
            lit = "'" + s.replace("'", "''") + "'"
            name = "`" + s.replace("`", "``") + "`"
            for text in (f"tags.evil{i} = {lit}", f"tags.{name} = 'k'", f"name = {lit}",
                         f"params.{name} = {lit}", f"git_branch LIKE {lit}", f"status ~ {lit}",
                         f"metrics.policy_id IN ({lit}, {lit})", f"dataset.{name} IS NULL"):
                try:
                    got = list_runs(db, text, include_deleted=True, limit=None)
                except FilterError as err:  # an invalid regex is refused, never run
                    assert "regular expression" in str(err), (text, err)
                    continue
                expect = {rid} if text.startswith(("tags.evil", "tags.`")) else (
                    {r["manifest"].run_id for r in corpus["runs"]} if " IS NULL" in text else set())
                assert {r["run_id"] for r in got.runs} == expect, text
    finally:
        with duckdb.connect(str(db)) as con:
            con.execute("DELETE FROM run_tags WHERE run_id = ? AND (key LIKE 'evil%' OR value = 'k')",
                        [rid])
    assert catalog_fingerprint(db) == before
