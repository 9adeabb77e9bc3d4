"""The 8 raster-scan orderings as the dihedral group D4 acting on feature maps.

Ordering ``k`` (0–7) is the D4 element ``g_k = rot90^(k % 4) ∘ flip^(k // 4)``
(flip = mirror left–right). A position ``p`` precedes ``q`` under ordering ``k``
when ``g_k(p)`` precedes ``g_k(q)`` in the plain row-major scan of the
transformed map. Ordering 0 is the usual top-left → bottom-right scan; the 8
elements give the 8 scans (any corner, along rows or along columns).

The fast network transforms the stem features by ``g_k``, runs one fixed
row-major causal mask and transforms back, so that both views of a training
step fit one batch (see ``masked.MaskedConv3x3`` for how kernels follow).
Transposing elements (odd ``k % 4``) swap H and W, so non-square maps work.
"""

from __future__ import annotations

import random
from typing import Any

import torch

NUM_ORDERINGS = 8


def _check(ordering: int) -> None:
    if not 0 <= int(ordering) < NUM_ORDERINGS:
        raise ValueError(f"ordering must be in 0..{NUM_ORDERINGS - 1}, got {ordering}")


def transform(x: torch.Tensor, ordering: int) -> torch.Tensor:
    """Apply ``g_k`` to the last two (spatial) dims of ``x``."""
    _check(ordering)
    if ordering // 4:
        x = x.flip(-1)
    return torch.rot90(x, ordering % 4, dims=(-2, -1)) if ordering % 4 else x


def inverse_transform(x: torch.Tensor, ordering: int) -> torch.Tensor:
    """Apply ``g_k⁻¹`` to the last two dims of ``x`` (undoes :func:`transform`)."""
    _check(ordering)
    if ordering % 4:
        x = torch.rot90(x, -(ordering % 4), dims=(-2, -1))
    return x.flip(-1) if ordering // 4 else x


def transformed_shape(height: int, width: int, ordering: int) -> tuple[int, int]:
    """Spatial shape of an ``height×width`` map after ``g_k`` (odd rotations transpose)."""
    return (width, height) if ordering % 2 else (height, width)


def raster_rank(ordering: int, height: int, width: int) -> torch.Tensor:
    """``height×width`` int64 map: the scan position of every pixel under ``ordering``."""
    th, tw = transformed_shape(height, width, ordering)
    rank = torch.arange(th * tw, dtype=torch.int64).reshape(th, tw)
    return inverse_transform(rank, ordering).contiguous()


def draw_orderings(generator: Any = None) -> tuple[int, int]:
    """Two *different* orderings, uniformly among the 56 ordered pairs.

    Drawing the same ordering twice would make both views identical and waste the
    step (the public reproduction can do that). ``generator`` may be a
    ``torch.Generator``, a ``numpy.random.Generator``, a ``random.Random`` or None.
    """
    if generator is None or isinstance(generator, torch.Generator):
        a, offset = (
            int(torch.randint(NUM_ORDERINGS, (1,), generator=generator)),
            int(torch.randint(NUM_ORDERINGS - 1, (1,), generator=generator)),
        )
    elif isinstance(generator, random.Random):
        a, offset = generator.randrange(NUM_ORDERINGS), generator.randrange(NUM_ORDERINGS - 1)
    else:  # numpy Generator
        a, offset = int(generator.integers(NUM_ORDERINGS)), int(generator.integers(7))
    return a, (a + 1 + offset) % NUM_ORDERINGS
