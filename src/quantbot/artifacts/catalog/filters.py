"""The run filter language: text -> tokens -> AST -> a SQL WHERE fragment with bound values.

Grammar (keywords case-insensitive; docs/schemas.md, "Run filters")::

    filter    := or_expr END
    or_expr   := and_expr ( OR and_expr )*
    and_expr  := not_expr ( AND not_expr )*
    not_expr  := NOT not_expr | '(' or_expr ')' | predicate
    predicate := field ( cmp literal | [NOT] IN '(' literal ( ',' literal )* ')'
                       | [NOT] ( LIKE | ILIKE ) string | IS [NOT] NULL | ( '~' | '!~' ) string )
    cmp       := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    field     := name ( '.' name )*      name := [A-Za-z_][A-Za-z0-9_]* | `any text` (`` is `)
    literal   := string | number | TRUE | FALSE          string := '...' ('' is ')
    order_by  := field [ ASC | DESC ] ( ',' field [ ASC | DESC ] )*

Why hand-written: every value becomes a bound parameter and every identifier comes from a
fixed table (run attributes, summary columns) or is itself bound (a ``params.*`` key, a tag
key), so no text of the filter is ever pasted into SQL. SQL's three-valued logic holds: a
comparison with a missing field is unknown, ``NOT`` of unknown is unknown, and a run is
listed only when the whole filter is true.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from quantbot.errors import FilterError, InvalidArgumentError

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "TRUE", "FALSE",
                      "ASC", "DESC"})
COMPARISONS = ("=", "!=", "<>", "<", "<=", ">", ">=")
#: Run attributes a filter accepts: SQL expression over the runs table ``r`` and the labels
#: table ``l`` (LEFT JOINed), and the value type literals are checked against.
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "run_id": ("r.run_id", "text"),
    "run_type": ("r.run_type", "text"),
    "status": ("r.status", "text"),
    "created_at": ("r.created_at", "timestamp"),
    "started_at": ("r.started_at", "timestamp"),
    "completed_at": ("r.completed_at", "timestamp"),
    "git_branch": ("r.git_branch", "text"),
    "git_commit": ("r.git_commit", "text"),
    "git_dirty": ("r.git_dirty", "bool"),
    "name": ("l.name", "text"),
    "error": ("(r.error_type || ': ' || r.error_message)", "text"),
    "error_phase": ("r.error_phase", "text"),
    "deleted_at": ("l.deleted_at", "timestamp"),
    "notes_count": ("coalesce(l.notes_count, 0)", "number"),
}
PREFIXES = ("params", "dataset", "metrics", "tags")
_FIELD_SQL = "(SELECT f.{col} FROM run_fields f WHERE f.run_id = r.run_id AND f.field = ?)"
_TAG_SQL = "(SELECT t.value FROM run_tags t WHERE t.run_id = r.run_id AND t.key = ?)"
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<op><=|>=|!=|<>|!~|[=<>~(),])
  | (?P<name>(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)*`)(?:\.(?:[A-Za-z0-9_]+|`(?:[^`]|``)*`))*)
""", re.VERBOSE)
_SEGMENT = re.compile(r"[A-Za-z0-9_]+|`(?:[^`]|``)*`")


@dataclass(frozen=True)
class Token:
    kind: str        # "number" | "string" | "op" | "name" | "kw" | "end"
    text: str        # the source text (keywords upper-cased)
    col: int         # 1-based column of its first character
    value: Any = None  # number: float; string: str; name: the dotted field name


@dataclass(frozen=True)
class Literal:
    kind: str  # "number" | "string" | "bool"
    value: Any
    col: int


@dataclass(frozen=True)
class Field:
    """A resolved field: its name as written, its type, and how to read it in SQL."""

    name: str
    type: str  # "text" | "number" | "bool" | "timestamp" | "dynamic" (params./dataset.)
    sql: str   # the expression; for dynamic fields a template with {col}
    params: tuple[Any, ...] = ()  # values bound by ``sql`` (a field or tag key)
    join: str = ""  # the table ``sql`` reads besides the runs table: "l" (labels), "m" (metrics)

    def expr(self, kind: str = "text") -> str:
        """The SQL reading this field; a dynamic field reads value_num for a number literal."""
        return self.sql.format(col="value_num" if kind == "number" else "value_text")


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # one of COMPARISONS, "<>" normalised to "!="
    value: Literal


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: str
    negated: bool
    insensitive: bool


@dataclass(frozen=True)
class Regex:
    field: Field
    pattern: str
    negated: bool


@dataclass(frozen=True)
class IsNull:
    field: Field
    negated: bool


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    child: Node


Node = Compare | In | Like | Regex | IsNull | And | Or | Not


def _shown(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:27] + "...")


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token; a stray character is an error."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            bad = text[pos]
            what = "unterminated string" if bad == "'" else (
                "unterminated `name`" if bad == "`" else f"unexpected {_shown(bad)}")
            raise FilterError(f"filter: {what} at column {pos + 1}")
        kind, raw, col = m.lastgroup or "", m.group(), pos + 1
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "number":
            tokens.append(Token("number", raw, col, float(raw)))
        elif kind == "string":
            tokens.append(Token("string", raw, col, raw[1:-1].replace("''", "'")))
        elif kind == "name" and "." not in raw and raw.upper() in KEYWORDS:
            tokens.append(Token("kw", raw.upper(), col))
        elif kind == "name":
            segments = [s[1:-1].replace("``", "`") if s.startswith("`") else s
                        for s in _SEGMENT.findall(raw)]
            tokens.append(Token("name", raw, col, ".".join(segments)))
        else:
            tokens.append(Token("op", raw, col))
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


@cache
def metric_types() -> dict[str, str]:
    """``metrics.<name>`` -> value type, from the summary schema (plus its split/policy)."""
    import pyarrow as pa

    from quantbot.artifacts.catalog.run_index import metric_names
    from quantbot.artifacts.schema.arrow_schemas import ArtifactType

    schema = ArtifactType.SUMMARY.spec.schema
    types = {"split": "text", "policy_id": "text"}
    for name in metric_names():
        t = schema.field(name).type
        types[name] = "text" if pa.types.is_string(t) else (
            "bool" if pa.types.is_boolean(t) else "number")
    return types


def static_fields() -> list[str]:
    """Every field name known without looking at the catalog (attributes, metrics)."""
    return [*ATTRIBUTES, *(f"metrics.{m}" for m in metric_types())]


def _unknown(name: str, what: str = "filter") -> FilterError:
    if name in PREFIXES:
        return FilterError(f"{what}: field {name!r} needs a key ({name}.<key>)")
    candidates = [f"metrics.{m}" for m in metric_types()] if name.startswith("metrics.") \
        else static_fields()
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}?" if close else \
        "fields: run attributes, params.<key>, dataset.<key>, metrics.<name>, tags.<key>"
    return FilterError(f"{what}: unknown field {name!r} ({hint})")


def resolve_field(name: str, what: str = "filter") -> Field:
    """The field ``name`` names (``status``, ``params.policy.sl``, ``metrics.sharpe``, ...)."""
    if name in ATTRIBUTES:
        sql, typ = ATTRIBUTES[name]
        return Field(name, typ, sql, join="l" if sql.startswith(("l.", "coalesce(l.")) else "")
    prefix, _, key = name.partition(".")
    if key and prefix in ("params", "dataset"):
        return Field(name, "dynamic", _FIELD_SQL, (name,))
    if key and prefix == "tags":
        return Field(name, "text", _TAG_SQL, (key,))
    if key and prefix == "metrics" and key in metric_types():
        quoted = '"' + key.replace('"', '""') + '"'
        return Field(name, metric_types()[key], f"m.{quoted}", join="m")
    raise _unknown(name, what)


class _Parser:
    def __init__(self, text: str, what: str = "filter") -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.what = what

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def error(self, expected: str) -> FilterError:
        t = self.tok
        if t.kind == "end":
            return FilterError(f"{self.what}: unexpected end of {self.what} (expected {expected})")
        return FilterError(f"{self.what}: unexpected {_shown(t.text)} at column {t.col}")

    def take(self, kind: str, *texts: str) -> Token | None:
        t = self.tok
        if t.kind == kind and (not texts or t.text in texts):
            self.pos += 1
            return t
        return None

    def need(self, kind: str, expected: str, *texts: str) -> Token:
        t = self.take(kind, *texts)
        if t is None:
            raise self.error(expected)
        return t

    def filter(self) -> Node:
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.error("the end")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.take("kw", "OR"):
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.take("kw", "AND"):
            node = And(node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.take("kw", "NOT"):
            return Not(self.not_expr())
        if self.take("op", "("):
            node = self.or_expr()
            self.need("op", "')'", ")")
            return node
        return self.predicate()

    def field(self) -> Field:
        t = self.need("name", "a field")
        return resolve_field(t.value, self.what)

    def predicate(self) -> Node:
        field = self.field()
        if self.take("kw", "IS"):
            negated = self.take("kw", "NOT") is not None
            self.need("kw", "NULL", "NULL")
            return IsNull(field, negated)
        op = self.take("op", *COMPARISONS)
        if op is not None:
            return Compare(field, "!=" if op.text == "<>" else op.text, self.literal(field))
        regex = self.take("op", "~", "!~")
        if regex is not None:
            return Regex(field, self.pattern(field, regex.text), regex.text == "!~")
        negated = self.take("kw", "NOT") is not None
        if self.take("kw", "IN"):
            self.need("op", "'('", "(")
            values = [self.literal(field)]
            while self.take("op", ","):
                values.append(self.literal(field))
            self.need("op", "')' or ','", ")")
            if field.type == "dynamic" and len({v.kind == "number" for v in values}) > 1:
                raise FilterError(f"{self.what}: IN values of {field.name} mix numbers and text "
                                  f"(column {values[0].col})")
            return In(field, tuple(values), negated)
        like = self.take("kw", "LIKE", "ILIKE")
        if like is not None:
            return Like(field, self.pattern(field, like.text), negated, like.text == "ILIKE")
        raise self.error("IN, LIKE or ILIKE" if negated else "an operator")

    def literal(self, field: Field) -> Literal:
        t = self.tok
        if self.take("number"):
            lit = Literal("number", t.value, t.col)
        elif self.take("string"):
            lit = Literal("string", t.value, t.col)
        elif self.take("kw", "TRUE", "FALSE"):
            lit = Literal("bool", t.text == "TRUE", t.col)
        elif self.take("kw", "NULL"):
            raise FilterError(f"{self.what}: compare with null using IS NULL or IS NOT NULL "
                              f"(column {t.col})")
        else:
            raise self.error("a value")
        return check_literal(field, lit, self.what)

    def pattern(self, field: Field, op: str) -> str:
        if field.type not in ("text", "dynamic"):
            raise FilterError(f"{self.what}: {op} needs a text field, {field.name} is a "
                              f"{field.type} (column {self.tok.col})")
        t = self.need("string", "a quoted pattern")
        if op in ("~", "!~"):
            check_regex(t.value, t.col, self.what)
        return t.value

    def order_by(self) -> list[tuple[Field, bool]]:
        keys = []
        while True:
            field = self.field()
            desc = self.take("kw", "ASC", "DESC")
            keys.append((field, desc is not None and desc.text == "DESC"))
            if not self.take("op", ","):
                break
        if self.tok.kind != "end":
            raise self.error("',' or the end")
        return keys


_TYPE_WORDS = {"number": "a number", "text": "text", "bool": "true or false",
               "timestamp": "a timestamp"}
_LITERAL_WORDS = {"number": "number", "string": "text", "bool": "boolean"}


def check_literal(field: Field, lit: Literal, what: str = "filter") -> Literal:
    """``lit`` if it fits ``field``'s type (a timestamp must parse), else a FilterError."""
    want = {"number": ("number",), "text": ("string",), "bool": ("bool",),
            "timestamp": ("string",), "dynamic": ("number", "string", "bool")}[field.type]
    if lit.kind not in want:
        shown = repr(lit.value) if lit.kind == "string" else (
            str(lit.value).lower() if lit.kind == "bool" else f"{lit.value:g}")
        raise FilterError(f"{what}: {field.name} is {_TYPE_WORDS[field.type]}, got "
                          f"{_LITERAL_WORDS[lit.kind]} {shown} at column {lit.col}")
    if field.type == "timestamp":
        time_range(field, lit, what)
    return lit


def time_range(field: Field, lit: Literal, what: str = "filter") -> tuple[datetime, datetime]:
    """(first, last) instant a timestamp literal covers: a bare date is its whole day (UTC,
    microsecond resolution, as query.py's ``_bound``); a datetime is one instant."""
    from quantbot.artifacts.catalog.query import _bound

    try:
        return (_bound(lit.value, field.name, end=False), _bound(lit.value, field.name, end=True))
    except InvalidArgumentError as err:
        raise FilterError(f"{what}: {err} (column {lit.col})") from None


@cache
def _regex_checker() -> Any:
    import duckdb

    return duckdb.connect(":memory:")


def check_regex(pattern: str, col: int, what: str = "filter") -> None:
    """Compile ``pattern`` with DuckDB's own engine (RE2), so an invalid one fails here."""
    import duckdb

    try:
        _regex_checker().execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as err:
        reason = str(err).splitlines()[0].split(": ", 1)[-1]
        raise FilterError(f"{what}: invalid regular expression {_shown(pattern)} at column "
                          f"{col}: {reason}") from None


def parse_filter(text: str) -> Node:
    """The AST of ``text``; FilterError (one line, with the column) when it does not parse."""
    return _Parser(text).filter()


def parse_order_by(text: str) -> list[tuple[Field, bool]]:
    """``[(field, descending), ...]`` of ``"<field> [ASC|DESC], ..."``."""
    return _Parser(text, "order-by").order_by()


def _bind(field: Field, lit: Literal) -> Any:
    """The bound value: a boolean of a ``params.*``/``dataset.*`` field is its stored text."""
    if lit.kind == "bool" and field.type == "dynamic":
        return "true" if lit.value else "false"
    return lit.value


def compile_node(node: Node) -> tuple[str, list[Any]]:
    """(SQL boolean expression, its bound values in placeholder order)."""
    if isinstance(node, And | Or):
        left, lp = compile_node(node.left)
        right, rp = compile_node(node.right)
        return f"({left} {'AND' if isinstance(node, And) else 'OR'} {right})", lp + rp
    if isinstance(node, Not):
        child, cp = compile_node(node.child)
        return f"(NOT {child})", cp
    field = node.field
    if isinstance(node, IsNull):
        return f"({field.expr()} IS {'NOT ' if node.negated else ''}NULL)", list(field.params)
    if isinstance(node, Like):
        op = ("NOT " if node.negated else "") + ("ILIKE" if node.insensitive else "LIKE")
        return f"({field.expr()} {op} ?)", [*field.params, node.pattern]
    if isinstance(node, Regex):
        neg = "NOT " if node.negated else ""
        return f"({neg}regexp_matches({field.expr()}, ?))", [*field.params, node.pattern]
    if isinstance(node, In):
        if field.type == "timestamp":
            parts = [compile_node(Compare(field, "=", v)) for v in node.values]
            sql = "(" + " OR ".join(p[0] for p in parts) + ")"
            return (f"(NOT {sql})" if node.negated else sql), [x for p in parts for x in p[1]]
        expr = field.expr(node.values[0].kind)
        marks = ", ".join("?" for _ in node.values)
        return (f"({expr} {'NOT ' if node.negated else ''}IN ({marks}))",
                [*field.params, *(_bind(field, v) for v in node.values)])
    expr = field.expr(node.value.kind)
    if field.type == "timestamp":
        first, last = time_range(field, node.value)
        sql, bound = {"<": ("{e} < ?", [first]), "<=": ("{e} <= ?", [last]),
                      ">": ("{e} > ?", [last]), ">=": ("{e} >= ?", [first]),
                      "=": ("({e} BETWEEN ? AND ?)", [first, last]),
                      "!=": ("(NOT ({e} BETWEEN ? AND ?))", [first, last])}[node.op]
        return "(" + sql.format(e=expr) + ")", [*field.params, *bound]
    return f"({expr} {node.op} ?)", [*field.params, _bind(field, node.value)]


def compile_filter(text: str) -> tuple[str, list[Any], set[str]]:
    """(WHERE fragment over ``r``/``l``/``m``, bound values, the joins it needs: "l", "m")."""
    node = parse_filter(text)
    sql, params = compile_node(node)
    return sql, params, _joins(node)


def _joins(node: Node) -> set[str]:
    if isinstance(node, And | Or):
        return _joins(node.left) | _joins(node.right)
    if isinstance(node, Not):
        return _joins(node.child)
    return {node.field.join} - {""}


def order_terms(keys: list[tuple[Field, bool]]) -> list[tuple[str, list[Any], bool]]:
    """(SQL expression, bound values, descending) per sort key; a dynamic field sorts by its
    number, then by its text (numbers numerically, text alphabetically)."""
    terms = []
    for field, desc in keys:
        if field.type == "dynamic":
            terms.append((field.expr("number"), list(field.params), desc))
        terms.append((field.expr(), list(field.params), desc))
    return terms


__all__ = ["ATTRIBUTES", "And", "Compare", "Field", "In", "IsNull", "Like", "Literal", "Node",
           "Not", "Or", "Regex", "check_regex", "compile_filter", "compile_node", "metric_types",
           "order_terms", "parse_filter", "parse_order_by", "resolve_field", "static_fields",
           "tokenize"]
