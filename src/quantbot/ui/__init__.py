"""quantbot.ui: ``quantbot backtest ui``, a local web app over the catalog and the run tree.

An interface beside the CLI: its routes call the same API functions the CLI calls and
render what they return (server-side Jinja2, htmx for partial updates, Plotly for charts,
everything served locally: no CDN, no Node build). ``create_app`` builds the FastAPI app.
"""

from quantbot._lazy import lazy_exports

_EXPORTS = {"create_app": "quantbot.ui.app", "Settings": "quantbot.ui.app"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
