"""The package version (one place: the public API, the CLI, model files and the app read it)."""

__version__ = "0.1.0"
