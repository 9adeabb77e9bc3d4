"""acseg core: Autoregressive Clustering for unsupervised image segmentation.

Headless (never imports Qt). The public API is loaded lazily so that
``acseg-core --version`` and the CLI's help stay fast without importing torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "preset": ("acseg_core.presets", "preset"),
    "ModelConfig": ("acseg_core.model.config", "ModelConfig"),
    "PRESETS": ("acseg_core.presets", "PRESETS"),
    "build_model": ("acseg_core.model.nn", "build_model"),
    "mi_loss": ("acseg_core.model.loss", "mi_loss"),
}

__all__ = ["PRESETS", "ModelConfig", "__version__", "build_model", "mi_loss", "preset"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'acseg_core' has no attribute {name!r}")
