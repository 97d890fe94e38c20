"""Every user error is a type of quantbot.errors: none is defined elsewhere, none is raised
as the bare base class (the CLI prints them as one line; callers catch them by kind)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import quantbot.errors as errors

SRC = Path(errors.__file__).parent


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(SRC.rglob("*.py"))]


def test_error_types_live_in_quantbot_errors():
    defined = {name for name, obj in vars(errors).items()
               if inspect.isclass(obj) and issubclass(obj, errors.QuantbotError)}
    assert {"InvalidArgumentError", "InvalidRunError", "SqlError", "StorageTimeoutError"} <= defined
    elsewhere = [f"{path.relative_to(SRC)}: {node.name}" for path, tree in _modules()
                 if path.name != "errors.py" for node in ast.walk(tree)
                 if isinstance(node, ast.ClassDef) and node.name.endswith("Error")]
    assert elsewhere == []


def test_no_bare_quantbot_error_is_raised():
    bare = [f"{path.relative_to(SRC)}:{node.lineno}" for path, tree in _modules()
            for node in ast.walk(tree)
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
            and getattr(node.exc.func, "id", None) == "QuantbotError"]
    assert bare == []
