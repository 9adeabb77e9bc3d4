"""acseg core: Autoregressive Clustering for unsupervised image segmentation, headless.

The public surface, what the app, the CLI and the docs' examples use::

    from acseg_core import TrainConfig, preset, train, load_model, predict_array, ReadOut

    result = run_to_end(train(TrainConfig(inputs=("tiles/",), out_dir="run")))
    loaded = load_model(result.model_path)              # a LoadedModel
    labels = predict_array(loaded, "tile.tif", readout=ReadOut("head", 0)).clusters

Names are resolved on first use, so importing one submodule (``acseg_core.errors``)
does not load the whole core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from acseg_core.version import __version__

if TYPE_CHECKING:
    from acseg_core.errors import AcsegError, BandMismatch, CancelledError, InputError
    from acseg_core.inference.collection import predict_collection
    from acseg_core.inference.predict import Prediction, PredictOptions, predict, predict_array
    from acseg_core.jobs import CancelToken, Progress, run_to_end
    from acseg_core.labelling.classes import ClassMap
    from acseg_core.labelling.project import Project
    from acseg_core.learning.job import learn
    from acseg_core.model.checkpoint import LoadedModel, load_model
    from acseg_core.model.config import ModelConfig
    from acseg_core.model.loss import mi_loss
    from acseg_core.model.nn import build_model
    from acseg_core.model.readouts import ReadOut
    from acseg_core.presets import PRESETS, default_preset, preset
    from acseg_core.training.config import TrainConfig
    from acseg_core.training.loop import TrainResult, train

_LAZY = {
    "AcsegError": "acseg_core.errors",
    "BandMismatch": "acseg_core.errors",
    "CancelledError": "acseg_core.errors",
    "InputError": "acseg_core.errors",
    "CancelToken": "acseg_core.jobs",
    "Progress": "acseg_core.jobs",
    "run_to_end": "acseg_core.jobs",
    "ModelConfig": "acseg_core.model.config",
    "LoadedModel": "acseg_core.model.checkpoint",
    "load_model": "acseg_core.model.checkpoint",
    "build_model": "acseg_core.model.nn",
    "mi_loss": "acseg_core.model.loss",
    "ReadOut": "acseg_core.model.readouts",
    "PRESETS": "acseg_core.presets",
    "default_preset": "acseg_core.presets",
    "preset": "acseg_core.presets",
    "TrainConfig": "acseg_core.training.config",
    "TrainResult": "acseg_core.training.loop",
    "train": "acseg_core.training.loop",
    "learn": "acseg_core.learning.job",
    "PredictOptions": "acseg_core.inference.predict",
    "Prediction": "acseg_core.inference.predict",
    "predict": "acseg_core.inference.predict",
    "predict_array": "acseg_core.inference.predict",
    "predict_collection": "acseg_core.inference.collection",
    "ClassMap": "acseg_core.labelling.classes",
    "Project": "acseg_core.labelling.project",
}

__all__ = [
    "PRESETS",
    "AcsegError",
    "BandMismatch",
    "CancelToken",
    "CancelledError",
    "ClassMap",
    "InputError",
    "LoadedModel",
    "ModelConfig",
    "PredictOptions",
    "Prediction",
    "Progress",
    "Project",
    "ReadOut",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "build_model",
    "default_preset",
    "learn",
    "load_model",
    "mi_loss",
    "predict",
    "predict_array",
    "predict_collection",
    "preset",
    "run_to_end",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'acseg_core' has no attribute {name!r}")
