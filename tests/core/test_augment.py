"""IIC's view augmentation: the flip is undone exactly, jitter spares unlisted bands."""

from __future__ import annotations

import torch

from acseg_core.model.loss import ac_loss_terms
from acseg_core.model.nn import build_model, draw_orderings
from acseg_core.presets import preset
from acseg_core.training.augment import ViewAugment, colour_jitter, flip_where, second_view
from acseg_core.training.step import AUGMENT_STREAM, step_generator, step_loss


def crops(batch: int = 6, bands: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return (
        torch.rand(batch, bands, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    )


def test_flip_is_its_own_inverse_per_crop() -> None:
    x = crops()
    flips = torch.tensor([True, False, True, True, False, False])
    flipped = flip_where(x, flips)
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    assert torch.equal(flip_where(flipped, flips), x)  # exactly, not approximately


def test_second_view_flip_is_undone_exactly() -> None:
    x = crops(batch=32)
    x2, flips = second_view(x, torch.Generator().manual_seed(3), ViewAugment(flip=True))
    assert flips is not None and 0 < int(flips.sum()) < 32
    assert not torch.equal(x2, x)
    assert torch.equal(flip_where(x2, flips), x)


def test_step_loss_undoes_the_flip_on_the_second_view_output() -> None:
    """The augmented step's loss equals the loss of view 1 against view 2's output on the
    flipped crops, flipped back (computed by hand here)."""
    torch.manual_seed(0)
    model = build_model(preset("cpu-small", in_channels=3, clusters=4)).train()
    x, valid = crops(batch=4, size=32), torch.ones(4, 32, 32, dtype=torch.bool)
    augment = ViewAugment(flip=True)
    got, _ = step_loss(model, x, valid, 5, 7, 3, 1, None, augment=augment)
    x2, flips = second_view(x, step_generator(5, 7, AUGMENT_STREAM), augment)
    first, second = draw_orderings(step_generator(5, 7))
    view1, view2 = model.forward_views(x, (first, second), with_overcluster=True, second=x2)
    unflipped = tuple(flip_where(y, flips) for y in view2)
    expected, _ = ac_loss_terms(view1, unflipped, 3, valid)
    assert got.item() == expected.item()


def test_second_input_equal_to_the_first_changes_nothing() -> None:
    torch.manual_seed(0)
    model = build_model(preset("cpu-small", in_channels=3, clusters=4)).train()
    x = crops(batch=4, size=32)
    plain = model.forward_views(x, (0, 5), with_overcluster=True)
    shared = model.forward_views(x, (0, 5), with_overcluster=True, second=x.clone())
    for a, b in zip(plain, shared, strict=True):
        torch.testing.assert_close(a[0], b[0], rtol=1e-4, atol=1e-5)


def test_jitter_never_touches_unlisted_bands() -> None:
    x = crops(bands=4)
    out = colour_jitter(
        x, torch.Generator().manual_seed(0), (0.4, 0.4, 0.4, 0.125), bands=(1, 2, 3)
    )
    assert torch.equal(out[:, 0], x[:, 0])  # e.g. NIR
    assert not torch.equal(out[:, 1:], x[:, 1:])


def test_zero_jitter_is_the_identity() -> None:
    x = crops()
    assert torch.equal(colour_jitter(x, torch.Generator(), (0.0, 0.0, 0.0, 0.0)), x)
