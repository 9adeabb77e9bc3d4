"""A learn whose visible image needs no tiled pass: read it from its :class:`LiveImage`.

A front-end shows one image while the user paints. Refitting after a stroke through
:func:`~acseg_core.learning.job.learn` alone would run the network over that image's
stroked tiles again, and the new map would need a tiled prediction. Here the visible
image's samples come from its :class:`~acseg_core.learning.live.LiveImage` (one
network pass, kept) and its map is the same pass's :meth:`LiveImage.predict`; the
other images' samples come from the shared cache (gathered once). The samples are
the ones ``gather`` gives, so the model is the one a plain learn fits.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.jobs import CancelToken, Progress
from acseg_core.learning.fit import PSEUDO_PER_IMAGE, Colour
from acseg_core.learning.job import learn
from acseg_core.learning.live import LiveImage
from acseg_core.learning.samples import Samples
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import LoadedModel

LIVE_MAX_PIXELS = 3000 * 3000  # larger images refit through the tiled path (memory)


class _VisibleFirst(dict):  # type: ignore[type-arg]
    """``learn``'s sample cache (keyed by (image, …)), answering for the visible image
    from its LiveImage and passing everything else to the shared cache."""

    def __init__(self, shared: dict[Any, Samples], live: LiveImage, strokes: StrokeSet,
                 seed: int) -> None:  # fmt: skip
        super().__init__()
        self.shared, self.live, self.strokes, self.seed = shared, live, strokes, seed
        self.read: Samples | None = None

    def _visible(self, key: Any) -> bool:
        return Path(key[0]) == self.live.image

    def __contains__(self, key: object) -> bool:
        return self._visible(key) or key in self.shared

    def __getitem__(self, key: Any) -> Samples:
        if not self._visible(key):
            return self.shared[key]
        if self.read is None:
            self.read = self.live.samples(self.strokes, PSEUDO_PER_IMAGE, self.seed)
        return self.read

    def __setitem__(self, key: Any, value: Samples) -> None:
        self.shared[key] = value


def learn_visible(
    base: LoadedModel,
    live: LiveImage,
    strokes: Mapping[Path, StrokeSet],
    class_names: Sequence[str],
    colours: Sequence[Colour],
    *,
    cluster_classes: Sequence[int],
    seed: int = 0,
    class_ids: Sequence[int] | None = None,
    cancel: CancelToken | None = None,
    cache: dict[Any, Samples] | None = None,
    check: bool = True,
    smooth: int | None = None,
    repaint: bool = True,
    feature_cache: Path | None = None,
) -> Generator[Progress, None, tuple[LoadedModel, np.ndarray | None]]:
    """:func:`learn` with ``live``'s image read from ``live``; returns the model and
    that image's map (what ``predict`` gives for the model there; ``smooth``: another
    majority window than the model's; no map without ``repaint``: a check of a model
    already shown). ``feature_cache``: where other images' bank features are kept."""
    here = strokes.get(live.image, StrokeSet.empty(*live.shape))
    wrapped = _VisibleFirst(cache if cache is not None else {}, live, here, seed)
    fitted = yield from learn(base, strokes, class_names, colours, cluster_classes=cluster_classes,
                              seed=seed, class_ids=class_ids, cancel=cancel, cache=wrapped,
                              check=check, feature_cache=feature_cache)  # fmt: skip
    if not repaint:
        return fitted, None
    yield Progress(1, 1, f"repainting {live.image.name}")
    return fitted, live.predict(fitted, smooth)


__all__ = ["LIVE_MAX_PIXELS", "learn_visible"]
