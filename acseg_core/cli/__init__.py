"""``acseg-core``: one module per verb (``register(subparsers)`` + a handler)."""

from acseg_core.cli.main import main

__all__ = ["main"]
