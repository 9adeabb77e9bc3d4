"""`acseg-core evaluate`: score a model or k-means against labels."""

from __future__ import annotations

from typing import Any

from acseg_core.commands._stub import register_stub


def register(sub: Any) -> None:
    register_stub(sub, "evaluate", "score a model or k-means against labels")
