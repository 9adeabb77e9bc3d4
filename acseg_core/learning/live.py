"""Refits in a fraction of a second: one image's read-out inputs, held whole.

Build a :class:`LiveImage` once per visible image (one network pass, fp32); then
:meth:`LiveImage.samples` reads the strokes' samples from it (the same samples
:func:`~acseg_core.learning.samples.gather` gives) and :meth:`LiveImage.predict` applies
a fitted read-out and the model's refinement without touching the network: what
``predict`` gives for that model, on this image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from acseg_core.features.for_model import feature_root, model_features, with_bank
from acseg_core.features.grid import grid_features
from acseg_core.io.normalise import apply_normalisation, image_normalisation
from acseg_core.io.raster import NODATA, open_raster
from acseg_core.jobs import run_to_end
from acseg_core.learning.samples import NetworkPass, Samples, pseudo_pixels
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.geometry import grid_stride
from acseg_core.model.readouts.base import LearnableKind
from acseg_core.model.readouts.registry import learnable_kind, readout_kind
from acseg_core.model.refine import decide


class LiveImage:
    """One image's read-out inputs (see the module). Memory: the learnable kind's grid
    blocks (1/stride² of the image each) plus its full-size blocks per pixel."""

    def __init__(
        self,
        loaded: LoadedModel,
        image: str | Path,
        base: str | None = None,
        kind: LearnableKind | None = None,
        feature_cache: Path | None = None,
    ) -> None:
        self.image = Path(image)
        self.kind = kind or learnable_kind()
        if self.kind.reads_bank:
            loaded = with_bank(loaded)
        with feature_root(feature_cache) as root:
            store = run_to_end(model_features(loaded, self.image, root))
            bank = None
            if store is not None:
                size = store.meta.height, store.meta.width
                window = (0, 0, size[1], size[0])
                bank = grid_features(store, window, grid_stride(loaded.config,
                                                                loaded.input_scale))[None]
        with open_raster(self.image) as raster:
            info = raster.info
            loaded.check_bands(self.image, info.count)
            norm = loaded.config.normalisation or image_normalisation(raster)
            data = raster.read((0, 0, info.width, info.height))
            self.valid = raster.valid_mask(data)
        x = torch.from_numpy(apply_normalisation(data, norm, self.valid))[None].to(loaded.device)
        self.loaded = loaded
        self.network = NetworkPass(loaded, x, base, self.kind, bank)
        self.shape = (info.height, info.width)

    def samples(self, strokes: StrokeSet, pseudo: int = 0, seed: int = 0) -> Samples:
        """The same samples :func:`gather` gives for ``strokes``, from the held blocks."""
        rows, cols = strokes.rows, strokes.cols
        labels = strokes.classes.astype(np.int16)
        groups = strokes.components()
        if pseudo:
            pr, pc = pseudo_pixels(self.valid, strokes, pseudo, seed)
            rows, cols = np.concatenate([rows, pr]), np.concatenate([cols, pc])
            labels = np.concatenate([labels, np.full(len(pr), -1, np.int16)])
            groups = np.concatenate([groups, np.full(len(pr), -1, np.int64)])
        ok = self.valid[rows, cols]
        blocks, ids = self.network.sample(rows[ok], cols[ok])
        where = np.stack([rows[ok], cols[ok]], axis=1).astype(np.int32)
        return Samples(blocks, labels[ok], ids, groups[ok], where)

    def probabilities(self, fitted: LoadedModel) -> torch.Tensor:
        """C×H×W probabilities of ``fitted``'s own read-out (a model sharing this trunk)."""
        kind = readout_kind(fitted.config.readout.kind)
        with torch.inference_mode():
            probs = kind.probabilities(fitted.model.readout, self.network.inputs)
            if self.network.frame != self.network.size:
                probs = F.interpolate(probs, size=self.network.size, mode="bilinear",
                                      align_corners=False)  # fmt: skip
        return probs[0]

    def predict(self, fitted: LoadedModel, smooth: int | None = None) -> np.ndarray:
        """H×W uint8 ids (255 = nodata), as ``predict`` gives for ``fitted`` (its own
        majority window unless ``smooth`` says otherwise)."""
        window = int(fitted.config.readout.smooth if smooth is None else smooth)
        probs = self.probabilities(fitted)
        with torch.inference_mode():
            _, ids = decide(probs, window)
        out = ids.to(torch.uint8).numpy()
        out[~self.valid] = NODATA
        return out


__all__ = ["LiveImage"]
