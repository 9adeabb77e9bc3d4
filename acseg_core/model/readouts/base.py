"""What a read-out kind is: one object that builds, applies and fits one read-out.

A read-out turns the trained network's per-pixel outputs into one id per pixel. Each
kind is a :class:`ReadoutKind` (``head``, ``kmeans``, ``strokes``, …) that knows

* how to build its (unfitted) module from the network's sizes (:meth:`build`);
* how to apply that module on the stem grid of a batch (:meth:`probabilities`, given a
  :class:`GridInputs`: features, input, head logits; probabilities at the input's size);
* whether it emits *classes* (named by a user) or *clusters* (:attr:`emits_classes`);
* whether ``train`` may pick it (:attr:`after_training`: fitted right after training,
  without labels, by :meth:`fit_after_training`);
* how far its receptive field reaches beyond the network's (:attr:`context_cells`).

So the network, prediction, learning and the front-ends never test a kind's name:
they ask the kind. Adding a read-out is one module with a kind and one entry in
:mod:`acseg_core.model.readouts.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ReadoutShape:
    """What a read-out module is sized by: the network's grid features, the input
    bands, the clusters of its head, the classes a learnt read-out names, the stride,
    the overclustering head's clusters and the feature bank's channels per level."""

    feature_channels: int
    in_channels: int
    clusters: int
    classes: int
    stride: int
    overclusters: int = 0
    bank_levels: tuple[int, ...] = ()


class GridInputs:
    """What a read-out sees of one batch: head-normalised g_ar features on the stem grid
    (``features``), the network input at full size (``x``), the feature bank's
    features on the same grid (``bank``, raw channels; None for a model without a
    bank) and the head's K logits on the grid (computed on first use, once)."""

    def __init__(
        self, net: Any, features: torch.Tensor, x: torch.Tensor, bank: torch.Tensor | None = None
    ) -> None:
        self.net = net
        self.features = features
        self.x = x
        self.bank = bank
        self._head_logits: torch.Tensor | None = None

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.x.shape[-2]), int(self.x.shape[-1]))

    @property
    def stride(self) -> int:
        return int(self.net.config.stride)

    @property
    def head_logits(self) -> torch.Tensor:
        if self._head_logits is None:
            self._head_logits = self.net.head_logits(self.features)
        return self._head_logits


class ReadoutKind:
    """One kind of read-out (see the module docstring). Subclasses set the attributes
    and override what applies to them."""

    name: str = ""
    label: str = ""  # what a user reads in a menu
    emits_classes: bool = False
    after_training: bool = False
    context_cells: int = 0

    def build(self, shape: ReadoutShape) -> nn.Module | None:
        """The unfitted module a model of this kind carries (None: nothing to fit)."""
        return None

    def is_fitted(self, module: nn.Module | None) -> bool:
        """Whether ``module`` (as built by :meth:`build`) holds a fit."""
        return module is not None and bool(getattr(module, "fitted", False))

    def probabilities(self, module: nn.Module | None, inputs: GridInputs) -> torch.Tensor:
        """B×N×H×W probabilities at the input's size."""
        raise NotImplementedError

    def fit_after_training(
        self,
        net: Any,
        crops: Sequence[tuple[torch.Tensor, ...]],
        seed: int,
        device: torch.device | str,
    ) -> dict[str, Any]:
        """Fit ``net.readout`` on training crops without labels; a summary for the log."""
        raise NotImplementedError(f"the {self.name} read-out is not fitted after training")


class LearnableKind(ReadoutKind):
    """A read-out taught by labelled pixels (a user's strokes): it emits classes.

    Learning samples :meth:`blocks` at stroked pixels exactly as :meth:`probabilities`
    computes them there, and :meth:`fit` turns samples and labels into the module.
    """

    emits_classes = True
    reads_bank = False  # whether its samples and module need the feature bank

    def blocks(self, inputs: GridInputs) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(blocks on the stem grid, blocks at full size), each 1×C×h×w: what a pixel's
        classifier sees (grid blocks are read bilinearly at the pixel centre)."""
        raise NotImplementedError

    def fit(
        self,
        shape: ReadoutShape,
        blocks: dict[str, np.ndarray],
        labels: np.ndarray,
        seed: int,
        unlabelled: dict[str, np.ndarray] | None = None,
    ) -> nn.Module:
        """A fitted module from samples (``blocks[name]`` n×C, ``labels`` class indices
        0..``shape.classes``−1; ``unlabelled``: blocks of unstroked pixels of the folder,
        for statistics no handful of strokes gives); a pure function of its inputs and
        the seed."""
        raise NotImplementedError

    def classify(self, module: nn.Module, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """n×C class probabilities of samples (what the module gives at those pixels),
        for checks that hold samples out (leave-one-stroke-out)."""
        raise NotImplementedError


__all__ = ["GridInputs", "LearnableKind", "ReadoutKind", "ReadoutShape"]
