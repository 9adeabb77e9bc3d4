"""The IIC mutual-information loss against a direct numpy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import acseg_core
from acseg_core.model.loss import (
    ac_loss,
    ac_loss_terms,
    head_losses,
    joint_by_box,
    joint_by_conv,
    mi_loss,
)
from acseg_core.model.refine import box_sum


def random_maps(batch=2, clusters=4, height=9, width=7, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, clusters, height, width, generator=generator, dtype=torch.float64)
    return torch.softmax(2 * logits, dim=1)


def numpy_negative_mi(y1: np.ndarray, y2: np.ndarray, t: int) -> float:
    """−I(y;y′) of the displacement-pooled, symmetrised joint, by explicit loops."""
    _, k, h, w = y1.shape
    joint = np.zeros((k, k))
    for dy in range(-t, t + 1):
        for dx in range(-t, t + 1):
            for i in range(h):
                for j in range(w):
                    ii, jj = i + dy, j + dx
                    if 0 <= ii < h and 0 <= jj < w:
                        joint += y1[:, :, i, j].T @ y2[:, :, ii, jj]
    joint = (joint + joint.T) / 2
    joint /= joint.sum()
    p_i, p_j = joint.sum(axis=1), joint.sum(axis=0)
    return -float(np.sum(joint * np.log(joint / np.outer(p_i, p_j))))


@pytest.mark.parametrize("t", [0, 2])
def test_loss_equals_direct_negative_mutual_information(t: int) -> None:
    y1, y2 = random_maps(seed=1), random_maps(seed=2)
    expected = numpy_negative_mi(y1.numpy(), y2.numpy(), t)
    assert mi_loss(y1, y2, displacement=t).item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert expected < 0


def test_public_api_loss_of_identical_balanced_maps_is_minus_log_k() -> None:
    """Two identical hard maps of K equally frequent clusters share all information:
    I = H = log K, so the loss (−I) is −log K; independent maps give 0."""
    k = 4
    ids = torch.arange(16 * 16).reshape(16, 16) % k
    same = torch.nn.functional.one_hot(ids, k).permute(2, 0, 1)[None].float()
    assert acseg_core.mi_loss(same, same, 0).item() == pytest.approx(-np.log(k), abs=1e-6)
    uniform = torch.full_like(same, 1 / k)
    assert acseg_core.mi_loss(same, uniform, 0).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("t", [0, 1, 3])
def test_box_filter_joint_equals_the_conv2d_joint(t: int) -> None:
    y1, y2 = random_maps(seed=5, height=12, width=10), random_maps(seed=6, height=12, width=10)
    torch.testing.assert_close(joint_by_box(y1, y2, t), joint_by_conv(y1, y2, t))
    assert mi_loss(y1, y2, t).item() == pytest.approx(mi_loss(y1, y2, t, by_conv=True).item())


def test_box_sum_counts_the_window_inside_the_image() -> None:
    ones = torch.ones(1, 1, 6, 5)
    counts = box_sum(ones, 1)
    assert counts[0, 0, 0, 0] == 4 and counts[0, 0, 2, 2] == 9 and counts[0, 0, 5, 2] == 6


def test_invariant_to_permuting_clusters() -> None:
    """Cluster ids are shared by both views, so both are permuted alike (the joint is
    symmetrised, which ties row i to column i)."""
    y1, y2 = random_maps(seed=7), random_maps(seed=8)
    base = mi_loss(y1, y2, 2).item()
    for perm in ([2, 0, 3, 1], [3, 2, 1, 0], [1, 0, 2, 3]):
        permuted = mi_loss(y1[:, perm], y2[:, perm], 2).item()
        assert permuted == pytest.approx(base, rel=1e-9)


def one_hot(labels: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).double()


def test_lowest_for_identical_one_hot_maps_with_uniform_use() -> None:
    k = 5
    labels = torch.arange(4 * 10 * 10).reshape(4, 10, 10) % k  # each cluster used equally
    y = one_hot(labels, k)
    loss = mi_loss(y, y, displacement=0).item()
    assert loss == pytest.approx(-math.log(k), abs=1e-6)
    for seed in range(5):  # nothing soft does better
        soft = random_maps(batch=4, clusters=k, height=10, width=10, seed=seed)
        assert mi_loss(soft, soft, 0).item() > loss
        assert mi_loss(soft, random_maps(4, k, 10, 10, seed + 10), 0).item() > loss


def test_near_zero_for_independent_uniform_maps() -> None:
    generator = torch.Generator().manual_seed(0)
    k = 4
    y1 = one_hot(torch.randint(k, (8, 64, 64), generator=generator), k)
    y2 = one_hot(torch.randint(k, (8, 64, 64), generator=generator), k)
    assert abs(mi_loss(y1, y2, displacement=0).item()) < 1e-3
    flat = torch.full((2, k, 8, 8), 1.0 / k)
    assert abs(mi_loss(flat, flat, 3).item()) < 1e-9


@pytest.mark.parametrize("t", [0, 2])
def test_valid_mask_equals_cropping(t: int) -> None:
    y1, y2 = random_maps(seed=11, width=12), random_maps(seed=12, width=12)
    valid = torch.zeros(2, 9, 12, dtype=torch.bool)
    valid[:, :, :7] = True
    garbage = y2.clone()
    garbage[..., 7:] = torch.rand_like(garbage[..., 7:])
    masked = mi_loss(y1, garbage, t, valid=valid).item()
    assert masked == pytest.approx(mi_loss(y1[..., :7], y2[..., :7], t).item(), rel=1e-9)


def test_gradients_are_finite_for_hard_assignments() -> None:
    y = one_hot(torch.zeros(1, 6, 6, dtype=torch.long), 3).requires_grad_(True)
    loss = mi_loss(y, y.detach().clone(), 1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(y.grad).all()


def test_float32_and_amp_inputs_give_float32_loss() -> None:
    y1, y2 = random_maps(seed=13).half(), random_maps(seed=14).half()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = mi_loss(y1, y2, 1)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(mi_loss(y1.double(), y2.double(), 1).item(), abs=1e-6)


def test_ac_loss_adds_the_overclustering_head() -> None:
    a, b = random_maps(seed=15), random_maps(seed=16)
    over_a, over_b = random_maps(clusters=9, seed=17), random_maps(clusters=9, seed=18)
    main = mi_loss(a, b, 1)
    over = mi_loss(over_a, over_b, 1)
    total = ac_loss((a, over_a), (b, over_b), 1, over_weight=0.5)
    assert total.item() == pytest.approx((main + 0.5 * over).item())
    assert ac_loss((a, None), (b, None), 1).item() == pytest.approx(main.item())
    assert ac_loss(a, b, 1).item() == pytest.approx(main.item())


def test_sub_heads_are_scored_one_by_one_and_averaged() -> None:
    a1, b1 = random_maps(seed=21), random_maps(seed=22)
    a2, b2 = random_maps(seed=23), random_maps(seed=24)
    both_a, both_b = torch.cat([a1, a2], dim=1), torch.cat([b1, b2], dim=1)
    expected = torch.stack([mi_loss(a1, b1, 1), mi_loss(a2, b2, 1)])
    torch.testing.assert_close(head_losses(both_a, both_b, 2, 1), expected)
    total, per_head = ac_loss_terms(both_a, both_b, 1, heads=2)
    torch.testing.assert_close(per_head, expected)
    assert total.item() == pytest.approx(expected.mean().item())
    assert expected[0].item() != pytest.approx(expected[1].item())  # two different heads
    with pytest.raises(ValueError, match="do not split"):
        head_losses(both_a, both_b, 3, 1)


def test_training_loss_batches_both_views_like_two_passes() -> None:
    from acseg_core.model.loss import training_loss
    from acseg_core.model.nn import build_model
    from acseg_core.presets import preset

    torch.manual_seed(0)
    model = build_model(preset("cpu-small", base_width=4, blocks=2, overclusters=8))
    x = torch.randn(2, 3, 32, 32)
    valid = torch.ones(2, 32, 32, dtype=torch.bool)
    valid[:, :4] = False
    loss = training_loss(model, x, (2, 7), displacement=2, valid=valid, over_weight=0.5)
    separate = ac_loss(
        model(x, 2, with_overcluster=True), model(x, 7, with_overcluster=True), 2, valid, 0.5
    )
    assert loss.item() == pytest.approx(separate.item(), rel=1e-4)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def numpy_joint(y1: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Symmetrised, normalised joint at displacement 0."""
    joint = np.einsum("bihw,bjhw->ij", y1, y2)
    joint = (joint + joint.T) / 2
    return joint / joint.sum()


def test_entropy_weight_one_is_exactly_negative_mi() -> None:
    y1, y2 = random_maps(seed=11), random_maps(seed=12)
    expected = numpy_negative_mi(y1.numpy(), y2.numpy(), 0)
    plain = mi_loss(y1, y2, displacement=0)
    weighted = mi_loss(y1, y2, displacement=0, entropy_weight=1.0)
    assert weighted.item() == plain.item()  # the same expression, bit for bit
    assert weighted.item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("lam", [1.5, 2.0])
def test_entropy_weight_adds_the_marginal_entropies(lam: float) -> None:
    """IIC's λ: −Σ P (log P − λ log Pᵢ − λ log Pⱼ) = −I − (λ − 1)(H(y) + H(y′))."""
    y1, y2 = random_maps(seed=13), random_maps(seed=14)
    joint = numpy_joint(y1.numpy(), y2.numpy())
    p_i, p_j = joint.sum(axis=1), joint.sum(axis=0)
    mi = float(np.sum(joint * np.log(joint / np.outer(p_i, p_j))))
    entropies = -float(np.sum(p_i * np.log(p_i))) - float(np.sum(p_j * np.log(p_j)))
    expected = -mi - (lam - 1) * entropies
    got = mi_loss(y1, y2, displacement=0, entropy_weight=lam).item()
    assert got == pytest.approx(expected, rel=1e-9)
    terms, _ = ac_loss_terms((y1, y1), (y2, y2), 0, entropy_weight=lam)
    assert terms.item() == pytest.approx(2 * expected, rel=1e-9)  # main + overclustering head
