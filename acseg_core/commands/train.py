"""`acseg-core train`: train an AC model on images or folders."""

from __future__ import annotations

from typing import Any

from acseg_core.commands._stub import register_stub


def register(sub: Any) -> None:
    register_stub(sub, "train", "train an AC model on images or folders")
