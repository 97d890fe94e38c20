"""The app's routers, one module per page or API area, each exposing ``router``."""
