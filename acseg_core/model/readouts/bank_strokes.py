"""The strokes read-out on the feature bank: logistic regression on pretrained features
and AC's own, taught by a user's strokes.

Per pixel the classifier sees, on the stem grid (read bilinearly at the pixel):

* the frozen bank's features of every level (``bank``: EfficientNet-Lite's strides 4
  to 32, ImageNet-pretrained: what a few strokes cannot teach from scratch);
* AC's head-normalised g_ar features (``ac``), its cluster probabilities (``probs``) and
  its overclustering head's (``over``): what AC learnt of this folder without labels;

and at full size the input bands (``bands``: every band, NIR included).

Each bank level and the AC features are reduced to their leading principal
components, whitened, and the narrow blocks standardised, all with statistics of
*unlabelled* pixels of the folder (a few strokes are no sample of the image); AC's
blocks are then scaled by ``AC_WEIGHT`` (a stronger L2 pull: the bank generalises, AC's
features fit the folder) and a class-balanced L2 logistic regression
(:func:`~acseg_core.model.readouts.logistic.fit_logistic`, C = ``C``) fits the strokes.
The recipe and its constants were chosen on the dev sets (docs/strokes.md).

Everything up to the softmax is linear, so the projections and standardisation fold
into one 1×1 convolution on the grid stack and one on the bands: the grid's class
logits are upsampled (bilinear, weights summing to one, so it commutes with the
map) and the bands' added at full size. Nothing widens the receptive field beyond
the network's and the bank's, so tiles still equal one-shot output.

A refit is a pure function of the samples (the fit is convex and starts from zero;
the unlabelled pixels are drawn with the seed).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.errors import AcsegError
from acseg_core.model.readouts.base import GridInputs, LearnableKind, ReadoutShape
from acseg_core.model.readouts.logistic import fit_logistic
from acseg_core.model.upsample import upsample_grid

COMPONENTS = 16  # principal components per bank level and of AC's features
C = 0.1  # inverse L2 strength of the logistic regression
AC_WEIGHT = 0.5  # scale of AC's blocks after standardisation
RANK_TOLERANCE = 1e-3  # components below this share of the variance are dropped, not whitened
MIN_UNLABELLED = 64  # fewer unlabelled pixels than this: statistics of all samples
GRID_BLOCKS = ("bank", "ac", "probs", "over")
PART_CHANNELS = 64  # channels converted to the compute precision at a time
AC_BLOCKS = ("ac", "probs", "over")


def grid_stack(inputs: GridInputs) -> dict[str, torch.Tensor]:
    """The grid blocks of a batch (B×C×h×w each); one line when the bank is missing."""
    if inputs.bank is None:
        raise AcsegError("this read-out reads the feature bank, but no bank features were given")
    features = inputs.features
    over_head = getattr(inputs.net, "over_head", None)
    over = (torch.softmax(over_head(features), dim=1) if over_head is not None
            else features[:, :0])  # fmt: skip
    bank = inputs.bank  # kept in its stored precision; read-outs convert it part by part
    if bank.shape[-2:] != features.shape[-2:]:  # the network saw a rescaled input
        bank = F.interpolate(bank.to(features.dtype), size=features.shape[-2:], mode="bilinear",
                             align_corners=False)  # fmt: skip
    return {"bank": bank, "ac": features, "probs": torch.softmax(inputs.head_logits, dim=1),
            "over": over}  # fmt: skip


class BankStrokesReadout(nn.Module):
    """Class probabilities: one 1×1 conv on the grid stack, one on the bands."""

    def __init__(self, shape: ReadoutShape) -> None:
        super().__init__()
        self.stride = int(shape.stride)
        stack = sum(shape.bank_levels) + shape.feature_channels + shape.clusters
        stack += shape.overclusters
        classes = max(1, shape.classes)
        self.grid = nn.Conv2d(stack, classes, kernel_size=1)
        self.bands = nn.Conv2d(shape.in_channels, classes, kernel_size=1, bias=False)
        for p in self.parameters():
            p.requires_grad_(False)
            nn.init.zeros_(p)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, inputs: GridInputs) -> torch.Tensor:
        # block by block, never the whole stack in memory: the bank is most of it
        weight, logits, start = self.grid.weight, None, 0
        for block in grid_stack(inputs).values():
            for part in block.split(PART_CHANNELS, dim=1):
                width = part.shape[1]
                w = weight[:, start : start + width].to(inputs.features.dtype)
                term = F.conv2d(part.to(w.dtype), w)
                logits = term if logits is None else logits + term
                start += width
        logits = logits + self.grid.bias.to(logits.dtype)[None, :, None, None]  # type: ignore[operator]
        logits = upsample_grid(logits, inputs.size, self.stride)
        logits = logits + self.bands(inputs.x.to(logits.dtype))
        return torch.softmax(logits, dim=1)

    def logits_of(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """n×classes logits of samples (what :meth:`forward` gives at those pixels)."""
        grid = np.concatenate([blocks[name] for name in GRID_BLOCKS], axis=1)
        weight = self.grid.weight[:, :, 0, 0].double().numpy()
        bands = self.bands.weight[:, :, 0, 0].double().numpy()
        return grid @ weight.T + blocks["bands"] @ bands.T + self.grid.bias.double().numpy()


class Projection:
    """Standardise channels, then (optionally) whitened leading principal components,
    all fitted on unlabelled samples: ``z = ((v − mean) · scale) @ basis``."""

    def __init__(self, sample: np.ndarray, components: int | None) -> None:
        v = sample.astype(np.float64)
        self.mean = v.mean(axis=0)
        std = v.std(axis=0)
        self.scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 0.0)
        width = v.shape[1]
        if components is None or components >= width or len(v) <= components:
            self.basis = np.eye(width)
            return
        z = (v - self.mean) * self.scale
        values, vectors = np.linalg.eigh(z.T @ z / len(z))  # ascending
        values, vectors = values[::-1][:components], vectors[:, ::-1][:, :components]
        keep = values > RANK_TOLERANCE * max(float(values.sum()), 1e-12)  # no whitened noise
        values, vectors = values[keep], vectors[:, keep]
        signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(len(values))])
        signs[signs == 0] = 1.0  # a fixed sign per component: refits stay identical
        self.basis = vectors * signs / np.sqrt(np.maximum(values, 1e-9))

    def apply(self, v: np.ndarray) -> np.ndarray:
        return ((v.astype(np.float64) - self.mean) * self.scale) @ self.basis

    def fold(self, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(classes × channels weight on raw channels, classes bias) of ``weight`` on z."""
        raw = weight @ (self.scale[:, None] * self.basis).T
        return raw, -raw @ self.mean


def _projections(
    shape: ReadoutShape, unlabelled: dict[str, np.ndarray]
) -> dict[str, list[tuple[slice, Projection, float]]]:
    """Per block: (channel slice, projection, weight) parts, fitted on ``unlabelled``."""
    parts: dict[str, list[tuple[slice, Projection, float]]] = {"bank": []}
    start = 0
    for width in shape.bank_levels:
        part = slice(start, start + width)
        parts["bank"].append((part, Projection(unlabelled["bank"][:, part], COMPONENTS), 1.0))
        start += width
    for name in ("ac", "probs", "over", "bands"):
        width = unlabelled[name].shape[1]
        if not width:
            parts[name] = []
            continue
        components = COMPONENTS if name == "ac" else None
        weight = AC_WEIGHT if name in AC_BLOCKS else 1.0
        parts[name] = [(slice(0, width), Projection(unlabelled[name], components), weight)]
    return parts


_PROJECTIONS: dict[str, dict[str, list[tuple[slice, Projection, float]]]] = {}
_CACHED = 4  # projections kept: a live refit and its leave-one-stroke-out checks share one


def _cached_projections(
    shape: ReadoutShape, unlabelled: dict[str, np.ndarray]
) -> dict[str, list[tuple[slice, Projection, float]]]:
    """:func:`_projections`, reused while the unlabelled samples stay the same (a refit
    after a stroke changes the strokes, not them): a pure function, so a cache is safe."""
    digest = hashlib.sha1(repr((shape.bank_levels, COMPONENTS, AC_WEIGHT)).encode())
    for name in sorted(unlabelled):
        block = np.ascontiguousarray(unlabelled[name])
        digest.update(f"{name}{block.shape}{block.dtype}".encode())
        digest.update(block.data)
    key = digest.hexdigest()
    if key not in _PROJECTIONS:
        while len(_PROJECTIONS) >= _CACHED:
            _PROJECTIONS.pop(next(iter(_PROJECTIONS)))
        _PROJECTIONS[key] = _projections(shape, unlabelled)
    return _PROJECTIONS[key]


def fit_bank_readout(
    shape: ReadoutShape,
    blocks: dict[str, np.ndarray],
    labels: np.ndarray,
    unlabelled: dict[str, np.ndarray] | None,
) -> BankStrokesReadout:
    """The read-out fitted on samples (``blocks[name]`` n×C, ``labels`` class indices),
    its projections on ``unlabelled`` samples (None or too few: on ``blocks``)."""
    labels = np.asarray(labels, np.int64)
    if len(np.unique(labels)) < 2:
        raise AcsegError("strokes of at least two classes are needed to learn from")
    if unlabelled is None or len(unlabelled["bands"]) < MIN_UNLABELLED:
        unlabelled = blocks
    parts = _cached_projections(shape, unlabelled)
    design = [
        projection.apply(blocks[name][:, part]) * weight
        for name in (*GRID_BLOCKS, "bands")
        for part, projection, weight in parts[name]
    ]
    w, b = fit_logistic(np.concatenate(design, axis=1), labels, shape.classes, C)
    module = BankStrokesReadout(shape)
    widths = {name: blocks[name].shape[1] for name in (*GRID_BLOCKS, "bands")}
    raw = {name: np.zeros((shape.classes, widths[name])) for name in widths}
    bias = b.astype(np.float64)
    column = 0
    for name in (*GRID_BLOCKS, "bands"):
        for part, projection, weight in parts[name]:
            count = projection.basis.shape[1]
            folded, offset = projection.fold(w[:, column : column + count] * weight)
            raw[name][:, part] += folded
            bias = bias + offset
            column += count
    grid = np.concatenate([raw[name] for name in GRID_BLOCKS], axis=1)
    with torch.no_grad():
        module.grid.weight.copy_(torch.from_numpy(grid)[:, :, None, None])
        module.grid.bias.copy_(torch.from_numpy(bias))
        module.bands.weight.copy_(torch.from_numpy(raw["bands"])[:, :, None, None])
        module.fitted.fill_(True)
    return module


class BankStrokesKind(LearnableKind):
    """Logistic regression on the bank and AC (see the module docstring)."""

    name = "bank-strokes"
    label = "learnt from strokes (pretrained features)"
    reads_bank = True

    def build(self, shape: ReadoutShape) -> nn.Module:
        return BankStrokesReadout(shape)

    def probabilities(self, module: nn.Module | None, inputs: GridInputs) -> torch.Tensor:
        return module(inputs)  # type: ignore[misc]

    def blocks(self, inputs: GridInputs) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return grid_stack(inputs), {"bands": inputs.x}

    def fit(
        self,
        shape: ReadoutShape,
        blocks: dict[str, np.ndarray],
        labels: np.ndarray,
        seed: int,
        unlabelled: dict[str, np.ndarray] | None = None,
    ) -> nn.Module:
        if not shape.bank_levels:
            raise AcsegError("this read-out needs a model with a feature bank")
        return fit_bank_readout(shape, blocks, labels, unlabelled)

    def classify(self, module: nn.Module, blocks: dict[str, np.ndarray]) -> np.ndarray:
        logits = torch.from_numpy(module.logits_of(blocks))  # type: ignore[operator]
        return torch.softmax(logits, dim=1).numpy()


__all__ = ["AC_WEIGHT", "COMPONENTS", "BankStrokesKind", "BankStrokesReadout",
           "fit_bank_readout"]  # fmt: skip
