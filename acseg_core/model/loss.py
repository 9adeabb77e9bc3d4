"""IIC mutual-information loss between two views' cluster maps.

The joint distribution over (cluster in view 1, cluster in view 2) is
``P = Σ_b Σ_p Σ_δ y1(p) y2(p+δ)ᵀ`` over a (2T+1)² window of displacements δ
(zero outside the image), symmetrised and normalised; the loss is
``−Σ P log(P / (Pᵢ Pⱼ))`` in nats. IIC and the reproduction get every δ from one
``conv2d`` of y1 with y2 as weights (K²·(2T+1)²·BHW multiply-adds). Because the
δ are summed, ``Σ_δ y2(p+δ)`` is a box filter of y2, so the same joint is
``y1 · box(y2)ᵀ``: two cumulative sums and one K×BHW×K product, exact up to
float rounding and ~(2T+1)² times cheaper (:func:`joint_by_conv` keeps the conv
form for the tests and the benchmark's reference).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from acseg_core.model.refine import box_sum

EPS = 1e-10


def joint_by_box(y1: torch.Tensor, y2: torch.Tensor, displacement: int) -> torch.Tensor:
    """Unnormalised K×K joint summed over all displacements (box-filter form)."""
    return torch.einsum("bihw,bjhw->ij", y1, box_sum(y2, displacement))


def joint_by_conv(y1: torch.Tensor, y2: torch.Tensor, displacement: int) -> torch.Tensor:
    """The same joint as IIC computes it: one conv2d of y1 with y2 as the weights."""
    joint = F.conv2d(y1.transpose(0, 1), y2.transpose(0, 1), padding=displacement)
    return joint.sum(dim=(2, 3))


def mutual_information(joint: torch.Tensor, entropy_weight: float = 1.0) -> torch.Tensor:
    """I(y; y′) in nats of a K×K joint (symmetrised and normalised here).

    ``entropy_weight`` λ is IIC's weight on the marginals' entropy:
    ``Σ P (log P − λ log Pᵢ − λ log Pⱼ) = I + (λ − 1)(H(y) + H(y′))``; λ = 1 (the
    default) is exactly the mutual information, λ > 1 pushes harder for balanced
    cluster use.
    """
    joint = (joint + joint.t()) / 2
    joint = joint / joint.sum().clamp_min(EPS)
    p_i = joint.sum(dim=1, keepdim=True).clamp_min(EPS)
    p_j = joint.sum(dim=0, keepdim=True).clamp_min(EPS)
    if entropy_weight == 1.0:
        return (joint * (joint.clamp_min(EPS).log() - p_i.log() - p_j.log())).sum()
    marginals = entropy_weight * (p_i.log() + p_j.log())
    return (joint * (joint.clamp_min(EPS).log() - marginals)).sum()


def mi_loss(
    y1: torch.Tensor,
    y2: torch.Tensor,
    displacement: int = 10,
    valid: torch.Tensor | None = None,
    *,
    by_conv: bool = False,
    entropy_weight: float = 1.0,
) -> torch.Tensor:
    """Negative mutual information (nats) between cluster maps y1, y2 (B×K×H×W).

    ``displacement`` T: the joint pools all (2T+1)² offsets. ``valid`` (B×H×W bool)
    removes nodata pixels from the joint. ``entropy_weight``: λ of
    :func:`mutual_information` (1 = exact −MI). Computed in at least float32 (AMP-safe).
    """
    if y1.shape != y2.shape or y1.dim() != 4:
        raise ValueError(f"mi_loss needs two B×K×H×W maps of one shape, got {y1.shape}, {y2.shape}")
    dtype = torch.promote_types(y1.dtype, torch.float32)  # AMP halves → float32
    # Autocast would run the joint's product in half precision; the MI of a near-
    # independent joint is a small difference of logs, so keep it all in float32+.
    with torch.autocast(y1.device.type, enabled=False):
        y1, y2 = y1.to(dtype), y2.to(dtype)
        if valid is not None:
            weight = valid.to(dtype).unsqueeze(1)
            y1, y2 = y1 * weight, y2 * weight
        joint = (joint_by_conv if by_conv else joint_by_box)(y1, y2, int(displacement))
        return -mutual_information(joint, entropy_weight)


def head_losses(
    probs1: torch.Tensor,
    probs2: torch.Tensor,
    heads: int = 1,
    displacement: int = 10,
    valid: torch.Tensor | None = None,
    entropy_weight: float = 1.0,
) -> torch.Tensor:
    """MI loss of each of ``heads`` sub-heads (channels split in equal groups): (heads,)."""
    if probs1.shape[1] % heads:
        raise ValueError(f"{probs1.shape[1]} channels do not split into {heads} heads")
    pairs = zip(probs1.chunk(heads, dim=1), probs2.chunk(heads, dim=1), strict=True)
    return torch.stack(
        [mi_loss(a, b, displacement, valid, entropy_weight=entropy_weight) for a, b in pairs]
    )


def ac_loss_terms(
    out1: Sequence[torch.Tensor | None] | torch.Tensor,
    out2: Sequence[torch.Tensor | None] | torch.Tensor,
    displacement: int = 10,
    valid: torch.Tensor | None = None,
    over_weight: float = 1.0,
    heads: int = 1,
    entropy_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(training loss, per-sub-head main losses): the mean of the ``heads`` main-head
    MI losses + ``over_weight`` × the overclustering head's, each with IIC's
    ``entropy_weight`` λ (1 = exact −MI).

    ``out1``/``out2`` are model outputs with ``with_overcluster=True`` —
    ``(probs, over_probs|None)`` — or bare probability maps.
    """
    if isinstance(out1, torch.Tensor):
        out1, out2 = (out1, None), (out2, None)
    per_head = head_losses(out1[0], out2[0], heads, displacement, valid, entropy_weight)
    loss = per_head.mean()
    if out1[1] is not None and out2[1] is not None and over_weight:
        over = mi_loss(out1[1], out2[1], displacement, valid, entropy_weight=entropy_weight)
        loss = loss + over_weight * over
    return loss, per_head


def ac_loss(
    out1: Sequence[torch.Tensor | None] | torch.Tensor,
    out2: Sequence[torch.Tensor | None] | torch.Tensor,
    displacement: int = 10,
    valid: torch.Tensor | None = None,
    over_weight: float = 1.0,
    heads: int = 1,
) -> torch.Tensor:
    """Training loss of two views (:func:`ac_loss_terms` without the per-head part)."""
    return ac_loss_terms(out1, out2, displacement, valid, over_weight, heads)[0]


def training_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    orderings: tuple[int, int],
    displacement: int = 10,
    valid: torch.Tensor | None = None,
    over_weight: float = 1.0,
) -> torch.Tensor:
    """One step's loss: both views in one batched pass (``forward_views``), then ac_loss."""
    out1, out2 = model.forward_views(x, orderings, with_overcluster=True)
    heads = getattr(getattr(model, "config", None), "heads", 1)
    return ac_loss(out1, out2, displacement, valid, over_weight, heads)
