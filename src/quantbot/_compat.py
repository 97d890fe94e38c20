"""The first release's call forms, kept working while the API says one thing one way.

Public functions now take a catalog and a base dir as keyword-only ``catalog=`` and
``base_dir=``. Calls written for the first release (``db=...``, or those arguments given
positionally) still work and raise a DeprecationWarning naming the new form, as pandas'
``deprecate_nonkeyword_arguments`` does.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def legacy_arguments(*old_positional: str) -> Callable[[F], F]:
    """Accept ``db=`` for ``catalog=``, and the old positional order ``old_positional``
    whenever a call passes more positional arguments than the new signature takes."""

    def decorate(fn: F) -> F:
        params = inspect.signature(fn).parameters.values()
        n_positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if "db" in kwargs:
                if "catalog" in kwargs:
                    raise TypeError(f"{fn.__name__}() got both db= and catalog=")
                kwargs["catalog"] = kwargs.pop("db")
                _warn(fn, "db= is now catalog=")
            if len(args) > n_positional and old_positional:
                if len(args) > len(old_positional):
                    raise TypeError(f"{fn.__name__}() takes at most {len(old_positional)} "
                                    f"positional arguments ({len(args)} given)")
                for name, value in zip(old_positional, args):
                    if name in kwargs:
                        raise TypeError(f"{fn.__name__}() got multiple values for {name!r}")
                    kwargs[name] = value
                args = ()
                _warn(fn, "pass " + ", ".join(f"{n}=" for n in old_positional
                                              if n in ("catalog", "base_dir")) + " by keyword")
            return fn(*args, **kwargs)

        return call  # type: ignore[return-value]

    return decorate


def _warn(fn: Callable[..., Any], what: str) -> None:
    warnings.warn(f"{fn.__module__}.{fn.__qualname__}: {what}", DeprecationWarning, stacklevel=3)
