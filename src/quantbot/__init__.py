"""quantbot: store, catalog and analyse backtest runs.

``quantbot.open_store(...)`` is the entry point of the Python API (see
:mod:`quantbot.artifacts.handle`); the packages are ``artifacts`` (storage and catalog),
``backtest`` (the flows that produce runs), ``analysis`` (readers of runs) and ``cli``.
"""

from quantbot._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {name: "quantbot.artifacts.handle" for name in ("RunHandle", "Store", "open_store")}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
