"""Display maths (Qt-free): band composition and stretch, label resizing, map coordinates."""

from __future__ import annotations

import numpy as np

from acseg_core.io.display import compose_rgb, pixel_to_map, resize_labels_nearest


def test_compose_rgb_maps_bands_and_stretches_per_band() -> None:
    data = np.stack([np.full((2, 2), v, np.uint16) for v in (100, 200, 300, 400)])
    low, high = np.array([0, 0, 0, 0.0]), np.array([400, 400, 400, 400.0])
    rgb = compose_rgb(data, (4, 1, 2), (low, high))
    assert rgb[:, 0, 0].tolist() == [255, 63, 127]


def test_nearest_resize_never_blends_labels() -> None:
    labels = np.array([[0, 9], [9, 0]], np.uint8)
    out = resize_labels_nearest(labels, (4, 4))
    assert set(np.unique(out)) == {0, 9} and out[0, 0] == 0 and out[0, 3] == 9


def test_pixel_to_map_uses_the_affine_transform() -> None:
    assert pixel_to_map((0.5, 0, 500000.0, 0, -0.5, 5200000.0), 10, 4) == (500005.0, 5199998.0)
