"""`acseg-core export`: export label masks of a project."""

from __future__ import annotations

from typing import Any

from acseg_core.commands._stub import register_stub


def register(sub: Any) -> None:
    register_stub(sub, "export", "export label masks of a project")
