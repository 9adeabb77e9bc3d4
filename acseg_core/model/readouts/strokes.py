"""The strokes read-out: a per-pixel classifier taught by a user's strokes.

AC has learnt the folder without labels; a few strokes per class then name what it
learnt. Per pixel the classifier sees the blocks the k-means read-out uses
(head-normalised g_ar features and the input bands) plus, on the stem grid, the
bands averaged over each cell and the head's cluster probabilities; and the local
mean of all grid blocks over a ``(2·CONTEXT + 1)²`` cell window (the neighbourhood's
make-up, which ilastik's smoothed filters give its forest). Blocks are standardised
per channel with statistics of the samples, then a one-hidden-layer MLP gives class
logits.

It stays inside the tiled prediction and is cheap at full size: the first layer is
linear, so everything from the grid runs on the grid (the local mean of a linear map
is the map of the local mean) and only its HIDDEN outputs are upsampled (upsampling
commutes with a linear map whose weights sum to one); the full-size bands add their
own term, then the ReLU and the output layer run per pixel. The local mean widens
the receptive field by ``CONTEXT`` cells, which :func:`acseg_core.model.nn.receptive_field`
adds to the tile margin, so tiles still equal one-shot output.

:func:`fit_classifier` is full-batch Adam with a seeded init on the samples, so the
read-out is a pure function of the samples and the seed. Classes with no samples get
a large negative bias: they are never predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.errors import AcsegError
from acseg_core.model.readouts.base import GridInputs, LearnableKind, ReadoutShape
from acseg_core.model.upsample import upsample_grid

HIDDEN = 32  # hidden units of the MLP
CONTEXT = 2  # local-mean radius in stem cells
STEPS = 150  # full-batch Adam steps
LEARNING_RATE = 0.02
WEIGHT_DECAY = 1e-3
MAX_SAMPLES = 8_000  # the fit's sample cap, split evenly over the classes
# the wide blocks are fitted on their leading principal components (of the samples),
# which keeps a refit well under a second; the projection folds into the first layer
COMPONENTS = {"grid": 24, "context": 16}
ABSENT_BIAS = -1e4  # logit bias of a class nobody taught
BLOCKS = ("grid", "context", "bands")  # what a sample holds (context: local mean of grid)


def local_mean(features: torch.Tensor, radius: int = CONTEXT) -> torch.Tensor:
    """Mean over a (2r+1)² window on the stem grid, counting only cells inside the image."""
    if radius <= 0:
        return features
    side = 2 * radius + 1
    return F.avg_pool2d(features, side, stride=1, padding=radius, count_include_pad=False)


def grid_stack(
    features: torch.Tensor, x: torch.Tensor, head_logits: torch.Tensor, stride: int
) -> torch.Tensor:
    """[features, bands averaged per cell, head probabilities] on the stem grid.

    ``x`` is the network's input; cells are the stride×stride blocks its grid steps
    over (tile origins are multiples of the stride, so tiles see the same cells).
    """
    colour = F.avg_pool2d(x.to(features.dtype), stride, stride, ceil_mode=True,
                          count_include_pad=False)  # fmt: skip
    colour = colour[..., : features.shape[-2], : features.shape[-1]]
    return torch.cat([features, colour, torch.softmax(head_logits, dim=1)], dim=1)


class StrokesReadout(nn.Module):
    """Class probabilities from the grid stack, its local mean and the bands."""

    def __init__(
        self, feature_channels: int, input_channels: int, clusters: int, classes: int,
        stride: int = 4,
    ) -> None:  # fmt: skip
        super().__init__()
        self.stride = int(stride)
        stack = feature_channels + input_channels + clusters
        self.grid = nn.Conv2d(stack, HIDDEN, kernel_size=1)
        self.context = nn.Conv2d(stack, HIDDEN, kernel_size=1, bias=False)
        self.bands = nn.Conv2d(input_channels, HIDDEN, kernel_size=1, bias=False)
        self.register_buffer("grid_mean", torch.zeros(stack))
        self.register_buffer("grid_scale", torch.ones(stack))
        self.register_buffer("bands_mean", torch.zeros(input_channels))
        self.register_buffer("bands_scale", torch.ones(input_channels))
        self.out = nn.Conv2d(HIDDEN, max(1, classes), kernel_size=1)
        for p in self.parameters():
            p.requires_grad_(False)
            nn.init.zeros_(p)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def _standard(self, name: str, v: torch.Tensor) -> torch.Tensor:
        mean = getattr(self, f"{name}_mean").to(v.dtype)[None, :, None, None]
        scale = getattr(self, f"{name}_scale").to(v.dtype)[None, :, None, None]
        return (v - mean) * scale

    def forward(
        self, features: torch.Tensor, x: torch.Tensor, head_logits: torch.Tensor
    ) -> torch.Tensor:
        """Probabilities B×C×H×W at ``x``'s size (``features``: head-normalised g_ar;
        ``head_logits``: the head's logits, both on the stem grid)."""
        stack = self._standard("grid", grid_stack(features, x, head_logits, self.stride))
        grid = self.grid(stack) + local_mean(self.context(stack))
        hidden = upsample_grid(grid, tuple(x.shape[-2:]), self.stride)
        hidden = hidden + self.bands(self._standard("bands", x.to(hidden.dtype)))
        return torch.softmax(self.out(F.relu(hidden)), dim=1)

    @torch.no_grad()
    def load_fit(self, fit: ClassifierFit) -> None:
        """Copy a fitted classifier into the convolutions."""
        for name in ("grid", "bands"):
            getattr(self, f"{name}_mean").copy_(fit.means[name])
            getattr(self, f"{name}_scale").copy_(fit.scales[name])
        for name in BLOCKS:
            getattr(self, name).weight.copy_(fit.first[name][:, :, None, None])
        self.grid.bias.copy_(fit.first_bias)
        self.out.weight.copy_(fit.second[:, :, None, None])
        self.out.bias.copy_(fit.second_bias)
        self.fitted.fill_(True)


@dataclass(frozen=True)
class ClassifierFit:
    """A fitted MLP in the read-out's terms (float32 tensors)."""

    means: dict[str, torch.Tensor]
    scales: dict[str, torch.Tensor]
    first: dict[str, torch.Tensor]  # HIDDEN × channels per block
    first_bias: torch.Tensor
    second: torch.Tensor  # classes × HIDDEN
    second_bias: torch.Tensor


def fit_classifier(
    blocks: dict[str, np.ndarray],
    labels: np.ndarray,
    classes: int,
    seed: int = 0,
    weights: np.ndarray | None = None,
    steps: int = STEPS,
) -> ClassifierFit:
    """Fit the MLP on samples: ``blocks[name]`` n×channels, ``labels`` n class indices.

    The loss is cross-entropy with every class weighted to the same total (a class
    stroked ten times as much does not win ten times as often), times the per-sample
    ``weights``. Deterministic: the init is drawn from ``seed`` and the data order
    never changes.
    """
    labels = np.asarray(labels, dtype=np.int64)
    present = np.unique(labels)
    if len(present) < 2:
        raise AcsegError("strokes of at least two classes are needed to learn from")
    if present[-1] >= classes or present[0] < 0:
        raise ValueError("labels outside 0..classes-1")
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    per_class = np.bincount(labels, weights=weights, minlength=classes)
    sample_weight = weights / per_class[labels] / len(present)
    means, scales, inputs, bases = {}, {}, [], {}
    for name in BLOCKS:
        v = torch.from_numpy(np.ascontiguousarray(blocks[name], dtype=np.float32))
        if name == "context":  # the local mean of the grid stack: the grid's statistics
            mean, scale = means["grid"], scales["grid"]
        else:
            mean = v.mean(dim=0)
            std = v.std(dim=0, unbiased=False)
            scale = torch.where(std > 1e-6, 1.0 / std.clamp_min(1e-6), torch.zeros_like(std))
            means[name], scales[name] = mean, scale
        standard = (v - mean) * scale
        bases[name] = _leading_components(standard, COMPONENTS.get(name))
        inputs.append(standard @ bases[name])
    x = torch.cat(inputs, dim=1)
    target = torch.from_numpy(labels)
    w = torch.from_numpy(sample_weight.astype(np.float32))
    gen = torch.Generator().manual_seed(int(seed))
    fan_in = x.shape[1]
    w1 = (torch.randn(HIDDEN, fan_in, generator=gen) * (2.0 / fan_in) ** 0.5).requires_grad_()
    b1 = torch.zeros(HIDDEN, requires_grad=True)
    w2 = (torch.randn(classes, HIDDEN, generator=gen) * (1.0 / HIDDEN) ** 0.5).requires_grad_()
    b2 = torch.zeros(classes, requires_grad=True)
    absent = torch.ones(classes, dtype=torch.bool)
    absent[torch.from_numpy(present)] = False
    params = [w1, b1, w2, b2]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    with torch.enable_grad():
        for step in range(1, steps + 1):
            logits = F.relu(x @ w1.T + b1) @ w2.T + b2
            logits = logits.masked_fill(absent, ABSENT_BIAS)
            loss = (F.cross_entropy(logits, target, reduction="none") * w).sum()
            loss = loss + WEIGHT_DECAY * ((w1**2).sum() + (w2**2).sum())
            grads = torch.autograd.grad(loss, params)
            _adam_step(params, grads, moments, step)
    first, start = {}, 0
    for name, block in zip(BLOCKS, inputs, strict=True):
        first[name] = w1.detach()[:, start : start + block.shape[1]] @ bases[name].T
        start += block.shape[1]
    bias2 = b2.detach().clone()
    bias2[absent] = ABSENT_BIAS
    return ClassifierFit(means, scales, first, b1.detach().clone(), w2.detach().clone(), bias2)


def _leading_components(standard: torch.Tensor, count: int | None) -> torch.Tensor:
    """channels × d: the block's ``count`` leading principal directions, each scaled to
    unit variance (the identity when the block is narrow)."""
    channels = standard.shape[1]
    if count is None or count >= channels or len(standard) <= count:
        return torch.eye(channels)
    cov = (standard.T.double() @ standard.double()) / len(standard)
    values, vectors = torch.linalg.eigh(cov)  # ascending
    values, vectors = values.flip(0)[:count], vectors.flip(1)[:, :count]
    signs = torch.sign(vectors[vectors.abs().argmax(dim=0), torch.arange(count)])
    vectors = vectors * signs  # a fixed sign per component: refits stay identical
    return (vectors / values.clamp_min(1e-6).sqrt()).float()


@torch.no_grad()
def _adam_step(
    params: list[torch.Tensor],
    grads: Sequence[torch.Tensor],
    moments: list[tuple[torch.Tensor, torch.Tensor]],
    step: int,
    beta1: float = 0.9,
    beta2: float = 0.999,
) -> None:
    """One Adam update, written out: torch.optim's first use costs seconds of imports."""
    for p, g, (m, v) in zip(params, grads, moments, strict=True):
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        m_hat = m / (1 - beta1**step)
        v_hat = v / (1 - beta2**step)
        p.sub_(LEARNING_RATE * m_hat / (v_hat.sqrt() + 1e-8))


def balanced_subsample(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of at most ``cap`` samples, the same share per class where possible (seeded)."""
    labels = np.asarray(labels)
    if len(labels) <= cap:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    present = np.unique(labels)
    budget = cap // len(present)
    picked: list[np.ndarray] = []
    for c in present:
        where = np.flatnonzero(labels == c)
        take = where if len(where) <= budget else np.sort(rng.choice(where, budget, replace=False))
        picked.append(take)
    return np.sort(np.concatenate(picked))


def validate_classes(names: Sequence[str], colours: Sequence[Sequence[int]]) -> None:
    """Refuse class lists a model file cannot carry."""
    if not 2 <= len(names) <= 254:
        raise AcsegError(f"a strokes read-out needs 2–254 classes, got {len(names)}")
    if len(colours) != len(names):
        raise AcsegError("one colour per class is needed")


class StrokesKind(LearnableKind):
    """The MLP read-out on AC's own features (see the module docstring); models learnt
    before the feature bank carry it."""

    name = "strokes"
    label = "learnt from strokes (AC features)"
    context_cells = CONTEXT

    def build(self, shape: ReadoutShape) -> nn.Module:
        return StrokesReadout(shape.feature_channels, shape.in_channels, shape.clusters,
                              shape.classes, shape.stride)  # fmt: skip

    def probabilities(self, module: nn.Module | None, inputs: GridInputs) -> torch.Tensor:
        return module(inputs.features, inputs.x, inputs.head_logits)  # type: ignore[misc]

    def blocks(self, inputs: GridInputs) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        stack = grid_stack(inputs.features, inputs.x, inputs.head_logits, inputs.stride)
        return {"grid": stack, "context": local_mean(stack)}, {"bands": inputs.x}

    def fit(
        self,
        shape: ReadoutShape,
        blocks: dict[str, np.ndarray],
        labels: np.ndarray,
        seed: int,
        unlabelled: dict[str, np.ndarray] | None = None,
    ) -> nn.Module:
        module = self.build(shape)
        module.load_fit(fit_classifier(blocks, labels, shape.classes, seed))
        return module

    def classify(self, module: nn.Module, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """The MLP on samples: the grid's statistics standardise the local mean too."""
        with torch.no_grad():
            hidden = module.grid.bias.clone()[None]
            for name, stats in (("grid", "grid"), ("context", "grid"), ("bands", "bands")):
                v = torch.from_numpy(np.ascontiguousarray(blocks[name], dtype=np.float32))
                standard = (v - getattr(module, f"{stats}_mean")) * getattr(module,
                                                                              f"{stats}_scale")
                hidden = hidden + standard @ getattr(module, name).weight[:, :, 0, 0].T
            out = module.out
            logits = torch.relu(hidden) @ out.weight[:, :, 0, 0].T + out.bias
            return torch.softmax(logits, dim=1).numpy()


__all__ = [
    "CONTEXT",
    "MAX_SAMPLES",
    "ClassifierFit",
    "StrokesKind",
    "StrokesReadout",
    "balanced_subsample",
    "fit_classifier",
    "local_mean",
    "validate_classes",
]
