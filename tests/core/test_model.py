"""The AC network: causality on the stem grid, orderings, parameter counts, shapes."""

from __future__ import annotations

import itertools

import pytest
import torch

from acseg_core.benchmarks.reference import reference_forward, reference_from_stem
from acseg_core.model.nn import (
    NUM_ORDERINGS,
    build_model,
    draw_orderings,
    raster_rank,
    receptive_field,
    transform,
)
from acseg_core.model.nn.masked import MaskedConv3x3
from acseg_core.presets import preset

ORDERINGS = range(NUM_ORDERINGS)


def tiny(attention: bool = False, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    options = {"in_channels": 3, "blocks": 3, "base_width": 4, **overrides}
    return build_model(preset("cpu-small", attention=attention, **options)).eval()


def stem_gradient(model, ordering, position, height=7, width=5, reference=False):
    """|∂ out[position] / ∂ stem features| summed over channels, per stem-grid cell."""
    torch.manual_seed(1)
    features = torch.randn(1, model.stem.conv.out_channels, height, width, dtype=torch.float64)
    features.requires_grad_(True)
    model = model.double()
    if reference:
        out = reference_from_stem(model, features, ordering)
    else:
        out = model.forward_from_stem(features, ordering)
    out[0, :, position[0], position[1]].sum().backward()
    return features.grad[0].abs().sum(dim=0)


POSITIONS = [(3, 2), (0, 4), (6, 0), (2, 3)]


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_causal_on_stem_grid(ordering: int, attention: bool) -> None:
    model = tiny(attention)
    rank = raster_rank(ordering, 7, 5)
    for position in POSITIONS:
        grad = stem_gradient(model, ordering, position)
        here = rank[position]
        later, earlier = rank > here, rank < here
        assert torch.count_nonzero(grad[later]) == 0, f"ordering {ordering} sees the future"
        if earlier.any():
            assert grad[earlier].max() > 0, "no dependence on the past"
        assert grad[position] > 0


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_reference_formulation_is_causal_too(ordering: int) -> None:
    model = tiny(attention=True)
    rank = raster_rank(ordering, 7, 5)
    grad = stem_gradient(model, ordering, (3, 2), reference=True)
    assert torch.count_nonzero(grad[rank > rank[3, 2]]) == 0
    assert grad[rank < rank[3, 2]].max() > 0


def test_unmasked_sees_the_future() -> None:
    """The causality test would catch a leak: without a mask, later cells matter."""
    model = tiny(attention=True)
    grad = stem_gradient(model, None, (3, 2))
    assert grad[raster_rank(0, 7, 5) > raster_rank(0, 7, 5)[3, 2]].max() > 0


def test_eight_orderings_are_eight_scans() -> None:
    ranks = {tuple(raster_rank(k, 4, 3).flatten().tolist()) for k in ORDERINGS}
    assert len(ranks) == NUM_ORDERINGS
    for scan in ranks:  # each is a permutation of the cells
        assert sorted(scan) == list(range(12))
    starts = {raster_rank(k, 4, 3).flatten().argmin().item() for k in ORDERINGS}
    assert starts == {0, 2, 9, 11}  # every scan starts in a corner


def test_orderings_give_different_outputs() -> None:
    model = tiny(attention=True)
    x = torch.randn(1, 3, 37, 29)
    with torch.no_grad():
        outs = [model(x, k) for k in [*ORDERINGS, None]]
    for a, b in itertools.combinations(range(len(outs)), 2):
        assert (outs[a] - outs[b]).abs().max() > 1e-5, f"views {a} and {b} coincide"


@pytest.mark.parametrize("attention", [False, True])
def test_fast_path_equals_per_ordering_masks(attention: bool) -> None:
    """Transform → fixed mask → transform back == rotated masks (non-square maps too)."""
    model = tiny(attention, overclusters=7)
    x = torch.randn(2, 3, 45, 30)
    with torch.no_grad():
        for k in ORDERINGS:
            fast, fast_over = model(x, k, with_overcluster=True)
            ref, ref_over = reference_forward(model, x, k, with_overcluster=True)
            torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(fast_over, ref_over, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("shape", [(40, 40), (40, 24)])
def test_forward_views_matches_separate_passes(shape) -> None:
    model = tiny(attention=True, overclusters=9).train()
    x = torch.randn(2, 3, *shape)
    with torch.no_grad():
        for pair in [(0, 5), (1, 2), (3, 6)]:
            views = model.forward_views(x, pair, with_overcluster=True)
            sequential = model.forward_views(x, pair, with_overcluster=True, batched=False)
            for (probs, over), (seq_probs, _), k in zip(views, sequential, pair, strict=True):
                torch.testing.assert_close(probs, seq_probs, atol=1e-5, rtol=1e-4)
                single_probs, single_over = model(x, k, with_overcluster=True)
                torch.testing.assert_close(probs, single_probs, atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(over, single_over, atol=1e-5, rtol=1e-4)


def test_sub_heads_train_side_by_side_and_a_kept_head_predicts_alone() -> None:
    from acseg_core.training.state import keep_head

    torch.manual_seed(0)
    cfg = preset("cpu-small", base_width=4, blocks=2, clusters=3, heads=4)
    model = build_model(cfg).train()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        first, second = model.forward_views(x, (0, 5))
    assert first.shape == second.shape == (2, 12, 32, 32)  # every head in training
    sums = first.reshape(2, 4, 3, 32, 32).sum(dim=2)  # a softmax per head
    torch.testing.assert_close(sums, torch.ones_like(sums))
    model.eval()
    with torch.no_grad():
        every = model.decode(model.encode(model.stem(x), None), (32, 32), all_heads=True)
        assert not torch.allclose(every[:, :3], every[:, 6:9])  # the heads differ
        torch.testing.assert_close(model(x), every[:, :3])  # inference: the first head
        kept_cfg, state = keep_head(model, cfg, 2)
        single = build_model(kept_cfg).eval()
        single.load_state_dict(state)
        assert kept_cfg.heads == 1 and state["head.weight"].shape[0] == 3
        torch.testing.assert_close(single(x), every[:, 6:9])


def test_each_ordering_masks_one_tap_and_all_taps_train() -> None:
    """The mask turns with the ordering, the kernel does not: view k leaves exactly one
    tap of W untouched, a different one per transposition class, and none overall."""
    conv = MaskedConv3x3(2, 3)
    x = torch.randn(1, 2, 6, 6)
    dead_taps = set()
    for k in ORDERINGS:
        conv.weight.grad = None
        conv(transform(x, k), [k]).sum().backward()
        dead = (conv.weight.grad.abs().sum(dim=(0, 1)) == 0).nonzero().tolist()
        assert len(dead) == 1
        dead_taps.add(tuple(dead[0]))
    assert len(dead_taps) == 4  # the four corners
    conv.weight.grad = None
    sum(conv(transform(x, k), [k]).sum() for k in ORDERINGS).backward()
    assert torch.count_nonzero(conv.weight.grad.abs().sum(dim=(0, 1))) == 9


def parameters(name: str, **overrides) -> int:
    with torch.device("meta"):
        model = build_model(preset(name, in_channels=4, **overrides))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name, attention, expected",
    [
        ("repro-4", False, 13.3e6),
        ("repro-4", True, 13.5e6),
        ("paper-5", False, 53.1e6),
        ("paper-5", True, 53.4e6),
    ],
)
def test_parameter_counts_match_the_reproduction(name, attention, expected) -> None:
    assert abs(parameters(name, attention=attention) / expected - 1) < 0.02


@pytest.mark.parametrize("stride", [2, 4])
def test_shapes_for_sizes_not_divisible_by_the_stride(stride: int) -> None:
    model = tiny(stride=stride, overclusters=11, sobel=True)
    x = torch.randn(1, 3, 203, 157)
    with torch.no_grad():
        probs, over = model(x, 1, with_overcluster=True)  # a transposing ordering
        plain = model(x)
        features = model.forward_features(x)
    assert probs.shape == plain.shape == (1, 5, 203, 157)
    assert over.shape == (1, 11, 203, 157)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(1, 203, 157))
    grid = (-(-203 // stride), -(-157 // stride))
    assert features.shape == (1, model.out_channels, *grid)


def test_no_overcluster_head_gives_none() -> None:
    probs, over = tiny(overclusters=0)(torch.randn(1, 3, 20, 20), 0, with_overcluster=True)
    assert over is None and probs.shape == (1, 5, 20, 20)


def test_sobel_channels_are_appended() -> None:
    model = tiny(sobel=True)
    assert model.stem.conv.in_channels == 5
    flat = torch.ones(1, 3, 16, 16)
    edge = flat.clone()
    edge[..., 8:] = 3.0
    assert not torch.equal(model.stem.sobel(flat)[:, 3:], model.stem.sobel(edge)[:, 3:])
    assert torch.count_nonzero(model.stem.sobel(flat)[:, 3:]) == 0


def test_receptive_field_bounds_the_influence_of_a_pixel() -> None:
    model = tiny(blocks=2, base_width=8)
    radius = receptive_field(model.config) // 2
    x = torch.randn(1, 3, 96, 96)
    bumped = x.clone()
    bumped[0, :, 48, 48] += torch.tensor([10.0, -10.0, 5.0])
    with torch.no_grad():
        changed = (model(bumped) - model(x)).abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert len(rows) > 0
    assert (rows - 48).abs().max() <= radius and (cols - 48).abs().max() <= radius


def test_draw_orderings_never_repeats_and_covers_all_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    pairs = [draw_orderings(generator) for _ in range(2000)]
    assert all(a != b and 0 <= a < 8 and 0 <= b < 8 for a, b in pairs)
    assert len(set(pairs)) == 56


def test_transform_round_trips_non_square() -> None:
    from acseg_core.model.nn import inverse_transform

    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    for k in ORDERINGS:
        assert torch.equal(inverse_transform(transform(x, k), k), x)


def test_public_api_names_resolve_to_the_working_objects() -> None:
    import acseg_core

    cfg = acseg_core.preset("cpu-small", clusters=4)
    assert isinstance(cfg, acseg_core.ModelConfig) and cfg.clusters == 4
    assert "cpu-small" in acseg_core.PRESETS
    net = acseg_core.build_model(cfg)
    with torch.no_grad():
        probs = net(torch.rand(1, cfg.in_channels, 32, 32))
    probs = probs[0] if isinstance(probs, tuple) else probs
    assert probs.shape[1] == 4
    assert float(acseg_core.mi_loss(probs, probs)) < 0
