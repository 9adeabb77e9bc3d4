"""Fine-tune the AC trunk on a user's strokes (MI + cross-entropy), then fit the read-out.

The issue asks whether training the trunk itself on the stroked pixels beats fitting
only the strokes read-out at equal seconds. :func:`finetune_trunk` answers it with a
copy of the trunk: each step takes one seeded crop per stroked image (centred on a
random stroked pixel), computes the IIC/MI loss the training uses between two
orderings of the crops (:func:`acseg_core.training.step.step_loss`), adds the
cross-entropy of a small linear class head (on the head-normalised, unmasked
features, upsampled) at the stroked pixels, and takes one Adam step. BatchNorm keeps
its running statistics (eval mode): a few tiny batches would only corrupt them.

The base model is never changed; the result is a LoadedModel with the new trunk and
the base read-out, from which :func:`~acseg_core.learning.fit.fit_strokes` fits
the strokes read-out as usual. A pure function of the inputs and the seed.
This is a bench-measured option, not the default (docs/strokes.md).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from acseg_core.errors import AcsegError
from acseg_core.io.normalise import apply_normalisation, image_normalisation
from acseg_core.io.raster import open_raster
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model import loss as losses
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.nn import draw_orderings
from acseg_core.model.upsample import upsample_grid
from acseg_core.training.step import step_generator

FINETUNE_LR = 1e-4  # the cpu-small preset's training rate
FINETUNE_CROP = 128  # the cpu-small preset's crop
CE_WEIGHT = 1.0  # cross-entropy weight beside the MI loss


@dataclass(frozen=True)
class StrokedInput:
    """One stroked image: the normalised network input (1×C×H×W, the network's frame)
    and its strokes (same H×W)."""

    x: torch.Tensor
    strokes: StrokeSet

    def label_map(self) -> torch.Tensor:
        """H×W class per pixel (−1 = not stroked)."""
        labels = torch.full(tuple(self.x.shape[-2:]), -1, dtype=torch.long)
        s = self.strokes
        rows, cols = (torch.from_numpy(v.astype(np.int64)) for v in (s.rows, s.cols))
        labels[rows, cols] = torch.from_numpy(s.classes.astype(np.int64))
        return labels


def _crop_at(
    item: StrokedInput, labels: torch.Tensor, side: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A side×side crop around a random stroked pixel, and its labels."""
    _, _, height, width = item.x.shape
    s = item.strokes
    pick = int(rng.integers(len(s)))
    top = int(np.clip(s.rows[pick] - side // 2, 0, max(0, height - side)))
    left = int(np.clip(s.cols[pick] - side // 2, 0, max(0, width - side)))
    h, w = min(side, height), min(side, width)
    return item.x[:, :, top : top + h, left : left + w], labels[top : top + h, left : left + w]


def finetune_trunk(
    loaded: LoadedModel,
    inputs: Sequence[StrokedInput],
    classes: int,
    steps: int,
    *,
    seed: int = 0,
    lr: float = FINETUNE_LR,
    crop: int = FINETUNE_CROP,
    ce_weight: float = CE_WEIGHT,
    displacement: int = 10,
) -> LoadedModel:
    """A copy of ``loaded`` whose trunk took ``steps`` MI + CE steps on the strokes."""
    inputs = [i for i in inputs if len(i.strokes)]
    if not inputs:
        raise AcsegError("no stroked pixels to fine-tune on")
    if steps < 0:
        raise ValueError("steps must be >= 0")
    model = copy.deepcopy(loaded.model).to(loaded.device)
    model.eval()
    torch.manual_seed(int(seed))
    gen = torch.Generator().manual_seed(int(seed))
    channels = model.out_channels
    head_w = (torch.randn(classes, channels, generator=gen) * channels**-0.5).requires_grad_()
    head_b = torch.zeros(classes, requires_grad=True)
    trunk = [p for name, p in model.named_parameters() if not name.startswith("readout")]
    for p in trunk:
        p.requires_grad_(True)
    optimiser = torch.optim.Adam([*trunk, head_w, head_b], lr=lr)
    rng = np.random.default_rng([int(seed), 0xF7])
    heads = int(model.config.heads)
    label_maps = [item.label_map() for item in inputs]  # once, not per step
    with torch.enable_grad():
        for step in range(steps):
            pairs = zip(inputs, label_maps, strict=True)
            crops = [_crop_at(item, labels, crop, rng) for item, labels in pairs]
            side = min(min(c.shape[-2] for c, _ in crops), min(c.shape[-1] for c, _ in crops))
            x = torch.cat([c[..., :side, :side] for c, _ in crops]).to(loaded.device)
            target = torch.stack([t[:side, :side] for _, t in crops]).to(loaded.device)
            first, second = draw_orderings(step_generator(seed, step))
            view1, view2 = model.forward_views(x, (first, second), with_overcluster=True)
            mi, _ = losses.ac_loss_terms(view1, view2, displacement, None, heads=heads)
            normed = model.head_norm(model.forward_features(x))
            logits = F.conv2d(normed, head_w[:, :, None, None], head_b)
            logits = upsample_grid(logits, (side, side), model.config.stride)
            loss = mi + ce_weight * F.cross_entropy(logits, target, ignore_index=-1)
            optimiser.zero_grad(set_to_none=True)
            if torch.isfinite(loss):
                loss.backward()
                optimiser.step()
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    digest = hashlib.sha256(f"{loaded.digest}-finetune-{steps}-{seed}".encode())
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    meta = {**loaded.meta, "finetune": {"steps": int(steps), "seed": int(seed),
                                        "base_digest": loaded.digest}}  # fmt: skip
    return LoadedModel(model, loaded.config, loaded.device, meta, digest.hexdigest())


def stroked_input(loaded: LoadedModel, image: str, strokes: StrokeSet) -> StrokedInput:
    """Read and normalise an image as prediction does (whole image; network frame 1:1)."""
    if loaded.input_scale != 1.0:
        raise AcsegError("fine-tuning needs a model that runs at the input's scale")
    with open_raster(image) as raster:
        info = raster.info
        norm = loaded.config.normalisation or image_normalisation(raster)
        data = raster.read((0, 0, info.width, info.height))
        valid = raster.valid_mask(data)
    x = torch.from_numpy(apply_normalisation(data, norm, valid))[None]
    return StrokedInput(x, strokes)


__all__ = ["StrokedInput", "finetune_trunk", "stroked_input"]
